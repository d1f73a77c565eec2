import {test} from 'uvu'
import * as assert from 'uvu/assert'
import {archivedCommandsNotice, describeDumpLoad} from './index.js'

test('describeDumpLoad shows the whole load command restore will run, however long, on as many lines as it has', () => {
  const long = 'mysql --defaults-extra-file=/etc/mysql/restore.cnf --database=shop --init-command="SET foreign_key_checks=0" && touch /data/.restored'
  assert.is(describeDumpLoad({name: 'db', bytes: 2048, load: long, workload: 'statefulset/mariadb'}),
    `dump     db: 2.0 KiB into \`${long}\` in the first Ready pod of statefulset/mariadb`)
  const script = 'set -e\nmysql shop\ntouch /data/.restored'
  assert.is(describeDumpLoad({name: 'db', bytes: 2048, load: script, workload: 'statefulset/mariadb'}), [
    'dump     db: 2.0 KiB into the first Ready pod of statefulset/mariadb, through this command:',
    '           set -e',
    '           mysql shop',
    '           touch /data/.restored',
  ].join('\n'))
})

test('archivedCommandsNotice names the dumps whose archived load commands a restore runs, never the commands', () => {
  const dump = (name: string, load?: string) => ({type: 'dump', name, extra: {workload: `statefulset/${name}`, ...(load ? {load} : {})}})
  assert.is(archivedCommandsNotice([{type: 'object'}, dump('zk')]), undefined, 'no load command, nothing runs')
  assert.is(archivedCommandsNotice([dump('db', 'mysql -pSECRET shop'), dump('zk'), dump('pg', 'pg_restore -d shop')]),
    'This restore runs 2 commands stored in the archive, in pods of the namespace: the load commands of dumps db (statefulset/db) and pg (statefulset/pg); kubesnap restore --dry-run shows them in full.')
  assert.not.match(archivedCommandsNotice([dump('db', 'mysql -pSECRET shop')]) ?? '', /SECRET/)
})

test.run()
