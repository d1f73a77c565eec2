import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {describePendingClaim} from './pending.js'

test('describePendingClaim: the newest event that means the claim will not bind, with its fix', () => {
  const notFound = {type: 'Warning', reason: 'ProvisioningFailed', message: 'storageclass.storage.k8s.io "standard" not found', lastTimestamp: '2026-12-07T03:00:05Z', count: 3}
  const cases: Array<[string, any[], {message: string; permanent: boolean} | undefined]> = [
    ['no events yet', [], undefined],
    ['only waiting for the provisioner (Normal)', [{type: 'Normal', reason: 'ExternalProvisioning', message: 'waiting for a volume to be created'}], undefined],
    ['a missing StorageClass: waiting cannot help', [notFound], {message: 'claim data-x is Pending: storageclass.storage.k8s.io "standard" not found; map it with --map-storage-class standard=NEW (kubectl get storageclass lists this cluster\'s classes)', permanent: true}],
    ['another provisioning failure: a retry may still bind it', [{type: 'Warning', reason: 'ProvisioningFailed', message: 'quota exceeded.', lastTimestamp: '2026-12-07T03:00:01Z'}], {message: 'claim data-x is Pending: quota exceeded; see kubectl describe pvc data-x, fix its StorageClass or provisioner, then restore again', permanent: false}],
    ['the newest of two', [{type: 'Warning', reason: 'ProvisioningFailed', message: 'old', lastTimestamp: '2026-12-07T03:00:01Z'}, notFound], {message: 'claim data-x is Pending: storageclass.storage.k8s.io "standard" not found; map it with --map-storage-class standard=NEW (kubectl get storageclass lists this cluster\'s classes)', permanent: true}],
    ['a Warning of another kind', [{type: 'Warning', reason: 'FailedBinding', message: 'no persistent volumes available'}], undefined],
  ]
  for (const [name, events, expected] of cases) assert.equal(describePendingClaim('data-x', events), expected, name)
})

test.run()
