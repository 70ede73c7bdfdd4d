import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestTable } from '../../src/pool/request-table.js';

test('add, get, delete by id; foreign ids in the same slot are not found', () => {
  const table = new RequestTable<string>(4);
  table.add(5, 'five');
  assert.equal(table.get(5), 'five');
  assert.equal(table.get(5 + 4), undefined, 'same slot, other id');
  assert.equal(table.isFree(5 + 4), false);
  assert.equal(table.delete(9), false);
  assert.equal(table.delete(5), true);
  assert.equal(table.size, 0);
  assert.equal(table.get(5), undefined);
});

test('grows before half full and keeps every entry findable', () => {
  const table = new RequestTable<number>(2);
  const ids: number[] = [];
  for (let id = 1; ids.length < 300; id += 1) {
    if (!table.isFree(id)) continue;
    table.add(id, id * 10);
    ids.push(id);
    if (id % 3 === 0) { table.delete(id); ids.pop(); }
  }
  assert.equal(table.size, ids.length);
  for (const id of ids) assert.equal(table.get(id), id * 10);
  assert.deepEqual(table.values().sort((a, b) => a - b), ids.map((id) => id * 10).sort((a, b) => a - b));
});

test('a taken slot refuses a second id; clear empties', () => {
  const table = new RequestTable<string>(8);
  table.add(3, 'a');
  assert.throws(() => table.add(3 + 8, 'b'), /slot of id 11 is taken/);
  table.clear();
  assert.equal(table.size, 0);
  assert.ok(table.isFree(3));
});
