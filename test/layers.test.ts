// The layer rule of docs/architecture.md, checked on the imports of every file under src/, and the
// checker itself checked on seeded violations (it must not pass a tree that breaks the rule).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  documentedDiagram,
  importCycles,
  importsOf,
  layerDiagram,
  layerOf,
  layerViolations,
  readImportGraph,
  sourceFiles,
  type ImportEdge,
} from '../scripts/import-graph.ts';

const root = join(import.meta.dirname, '..');
const edge = (from: string, to: string): ImportEdge => ({ from, to });

describe('the tree follows the layer rule', () => {
  const edges = readImportGraph(root);

  test('every file under src/ is in a layer', () => {
    const files = sourceFiles(root);
    assert.ok(files.length > 40, `only ${files.length} files read`);
    assert.deepEqual(
      files.filter((f) => layerOf(f) === null),
      [],
    );
  });

  test('no import breaks the layer rule', () => {
    assert.ok(edges.length > 100, `only ${edges.length} imports read`);
    assert.deepEqual(layerViolations(edges), []);
  });

  test('no files import each other in a cycle', () => {
    assert.deepEqual(importCycles(edges), []);
  });

  test('the transports and the device model stay apart', () => {
    const from = (layer: string) => edges.filter((e) => layerOf(e.from) === layer).map((e) => layerOf(e.to));
    for (const l of ['device', 'driver', 'protocol', 'compose'])
      assert.ok(!from('transports').includes(l), l);
    for (const l of ['transports', 'native', 'compose']) {
      assert.ok(!from('device').includes(l), `device imports ${l}`);
      assert.ok(!from('driver').includes(l), `driver imports ${l}`);
    }
  });

  test('docs/architecture.md shows the diagram the imports give', () => {
    const doc = readFileSync(join(root, 'docs', 'architecture.md'), 'utf8');
    assert.equal(
      documentedDiagram(doc),
      layerDiagram(edges),
      'run: node --import tsx scripts/import-graph.ts --write',
    );
  });
});

describe('the checker catches seeded violations', () => {
  test('a clean graph has no violations and no cycles', () => {
    const clean = [
      edge('src/device/gpio-device.ts', 'src/protocol/constants.ts'),
      edge('src/protocol/constants.ts', 'src/virtio/feature-bits.ts'),
      edge('src/transports/loopback/loopback-transport.ts', 'src/virtqueue/device-queue.ts'),
      edge('src/compose/loopback-chip.ts', 'src/transports/loopback/loopback-transport.ts'),
      edge('src/cli/main.ts', 'src/daemon/served-device.ts'),
      edge('src/index.ts', 'src/cli/main.ts'),
    ];
    assert.deepEqual(layerViolations(clean), []);
    assert.deepEqual(importCycles(clean), []);
  });

  test('an upward import: protocol imports the device model', () => {
    const v = layerViolations([edge('src/protocol/messages.ts', 'src/device/gpio-device.ts')]);
    assert.equal(v.length, 1);
    assert.match(
      v[0],
      /src\/protocol\/messages\.ts \(protocol\) imports src\/device\/gpio-device\.ts \(device\)/,
    );
  });

  test('a transport imports GPIO: device, driver or protocol', () => {
    for (const to of ['src/device/gpio-device.ts', 'src/driver/chip.ts', 'src/protocol/constants.ts'])
      assert.equal(
        layerViolations([edge('src/transports/loopback/loopback-transport.ts', to)]).length,
        1,
        to,
      );
  });

  test('the device model imports a transport; the driver imports the native addon', () => {
    assert.equal(
      layerViolations([edge('src/device/virtio-gpio-device.ts', 'src/transports/vhost-user/backend.ts')])
        .length,
      1,
    );
    assert.equal(layerViolations([edge('src/driver/gpio-driver.ts', 'src/native/index.ts')]).length, 1);
  });

  test('virtqueue imports the seams above it; a layer imports an entry point', () => {
    assert.equal(
      layerViolations([edge('src/virtqueue/split-ring.ts', 'src/virtio/virtio-device.ts')]).length,
      1,
    );
    assert.equal(layerViolations([edge('src/daemon/served-device.ts', 'src/index.ts')]).length, 1);
  });

  test('a file in no layer is named', () => {
    assert.deepEqual(layerViolations([edge('src/gadgets/x.ts', 'src/protocol/constants.ts')]), [
      'src/gadgets/x.ts is in no layer (add its folder to LAYER_PATHS)',
    ]);
  });

  test('a cycle of three files, and a file importing itself, are found; a diamond is not a cycle', () => {
    const cycles = importCycles([
      edge('src/cli/a.ts', 'src/cli/b.ts'),
      edge('src/cli/b.ts', 'src/cli/c.ts'),
      edge('src/cli/c.ts', 'src/cli/a.ts'),
      edge('src/cli/c.ts', 'src/cli/d.ts'),
      edge('src/cli/e.ts', 'src/cli/e.ts'),
    ]);
    assert.deepEqual(cycles.sort(), [['src/cli/a.ts', 'src/cli/b.ts', 'src/cli/c.ts'], ['src/cli/e.ts']]);
    const diamond = [
      edge('src/cli/a.ts', 'src/cli/b.ts'),
      edge('src/cli/a.ts', 'src/cli/c.ts'),
      edge('src/cli/b.ts', 'src/cli/d.ts'),
      edge('src/cli/c.ts', 'src/cli/d.ts'),
    ];
    assert.deepEqual(importCycles(diamond), []);
  });

  test('a cycle closed only by a type-only import is no load-order cycle', () => {
    const typeLoop = [
      edge('src/log/a.ts', 'src/log/b.ts'),
      { ...edge('src/log/b.ts', 'src/log/a.ts'), typeOnly: true },
    ];
    assert.deepEqual(importCycles(typeLoop), []);
    assert.equal(importCycles(typeLoop.map((e) => ({ ...e, typeOnly: false }))).length, 1);
  });
});

describe('a seeded tree on disk', () => {
  test('an upward import and a cycle in real files are found by reading the tree', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'vgpio-layers-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const put = (path: string, text: string) => {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), text);
    };
    put('src/protocol/codes.ts', "import { GpioDevice } from '../device/model.ts';\nexport const x = 1;\n");
    put('src/device/model.ts', "import { y } from './state.ts';\nexport class GpioDevice {}\n");
    put('src/device/state.ts', "import { GpioDevice } from './model.ts';\nexport const y = 2;\n");
    put('src/transports/wire.ts', "import type { Msg } from '../protocol/codes.ts';\n");
    const edges = readImportGraph(dir);
    assert.deepEqual(sourceFiles(dir), [
      'src/device/model.ts',
      'src/device/state.ts',
      'src/protocol/codes.ts',
      'src/transports/wire.ts',
    ]);
    assert.equal(layerViolations(edges).length, 2, layerViolations(edges).join('\n'));
    assert.deepEqual(importCycles(edges), [['src/device/model.ts', 'src/device/state.ts']]);
  });
});

describe('importsOf', () => {
  test('static, type-only, re-export, side-effect and dynamic imports; packages and node: left out', () => {
    const src = [
      "import { a } from './a.ts';",
      "import type { B } from '../protocol/b.ts';",
      "export * from './c.ts';",
      "import './d.ts';",
      "// import { z } from './commented-out.ts';",
      "const e = await import('../../src/e.ts');",
      "import { readFileSync } from 'node:fs';",
      "import ts from 'typescript';",
    ].join('\n');
    assert.deepEqual(
      importsOf('src/device/x.ts', src).map((e) => [e.to, e.typeOnly]),
      [
        ['src/device/a.ts', false],
        ['src/protocol/b.ts', true],
        ['src/device/c.ts', false],
        ['src/device/d.ts', false],
        ['src/e.ts', false],
      ],
    );
  });
});
