/**
 * Free loopback ports for the test cluster's components. The kernel picks a
 * free port for a socket bound to port 0; we read it, close the socket and hand
 * the number to a child. Another process could take it in between, but on a
 * test machine that window is small; what we can prevent is handing the same
 * port twice ourselves, so every port given out is remembered.
 */
import net from 'node:net'
import {SetupError} from './setup-error.js'

const handedOut = new Set<number>()
let loopback: Promise<void> | undefined

/**
 * Returns a loopback TCP port that was free a moment ago and that this process
 * has not handed out before; a SetupError when no port can be bound.
 */
export async function freePort(): Promise<number> {
  loopback ??= checkLoopback()
  await loopback
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await probePort().catch((err: NodeJS.ErrnoException) => {
      throw new SetupError(`Cannot listen on a port of 127.0.0.1 (${err.code ?? err.message}): the test cluster runs on loopback, so bring the lo interface up with 127.0.0.1 and allow listening on it.`, {cause: err})
    })
    if (!handedOut.has(port)) {
      handedOut.add(port)
      return port
    }
  }
  throw new SetupError('No free port on 127.0.0.1 in 50 attempts: stop what holds the loopback ports (another test cluster?), then run again.')
}

/** Returns `count` distinct free loopback ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = []
  for (let i = 0; i < count; i++) ports.push(await freePort())
  return ports
}

function probePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen({host: '127.0.0.1', port: 0, exclusive: true}, () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('listening on port 0 gave no port'))))
    })
  })
}

/**
 * Connects to a port of our own on 127.0.0.1, once: with the lo interface
 * down, binding still works but every connection fails, and each component
 * would only time out a minute later.
 */
async function checkLoopback(): Promise<void> {
  const server = net.createServer((socket) => socket.destroy())
  server.unref()
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({host: '127.0.0.1', port: 0}, resolve)
    })
    const {port} = server.address() as net.AddressInfo
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({host: '127.0.0.1', port}, () => {
        socket.destroy()
        resolve()
      })
      socket.once('error', reject)
    })
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    throw new SetupError(`Cannot connect to 127.0.0.1 (${e.code ?? e.message}): the test cluster runs on loopback, so bring the lo interface up (\`ip link set lo up\`) and allow connections on it.`, {cause: err})
  } finally {
    server.close()
  }
}
