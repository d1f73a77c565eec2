/**
 * Free loopback ports for the test cluster's components. The kernel picks a
 * free port for a socket bound to port 0; we read it, close the socket and hand
 * the number to a child. Another process could take it in between, but on a
 * test machine that window is small; what we can prevent is handing the same
 * port twice ourselves, so every port given out is remembered.
 */
import net from 'node:net'

const handedOut = new Set<number>()

/** Returns a loopback TCP port that was free a moment ago and that this process has not handed out before. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await probePort()
    if (!handedOut.has(port)) {
      handedOut.add(port)
      return port
    }
  }
  throw new Error('no free loopback port found in 50 attempts')
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
