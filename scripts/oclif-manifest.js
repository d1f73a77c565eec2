// Writes oclif.manifest.json after the build (`npm run build`), as oclif's own
// `oclif manifest` does, without that CLI's publishing dependencies. With the
// manifest, oclif imports only the command being run; without it, every start
// imported every command file (and @kubernetes/client-node with them):
// `kubesnap --version` took 0.8 s and 130 MiB instead of 0.2 s and 60 MiB.
import {writeFile} from 'node:fs/promises'
import {fileURLToPath} from 'node:url'
import {Plugin} from '@oclif/core/config'

const root = fileURLToPath(new URL('..', import.meta.url))
const plugin = new Plugin({root, type: 'core', isRoot: true, ignoreManifest: true, errorOnManifestCreate: true})
await plugin.load()
await writeFile(new URL('../oclif.manifest.json', import.meta.url), `${JSON.stringify(plugin.manifest, null, 2)}\n`)
