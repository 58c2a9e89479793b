#!/usr/bin/env node
// The import graph of src/ and the layer rule it must follow (docs/architecture.md, "Layers").
// Usage: node --import tsx scripts/import-graph.ts [--check | --write]
//   (no option)  print the layer diagram (mermaid) built from the imports as they are
//   --check      exit 1 if an import breaks the layer rule, files import in a cycle, or the
//                diagram in docs/architecture.md is not the one the imports give
//   --write      rewrite the diagram in docs/architecture.md
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** One import statement: `from` imports `to` (both repository paths such as `src/device/gpio-device.ts`). */
export interface ImportEdge {
  from: string;
  to: string;
  /** `import type` / `export type`: erased when compiled. */
  typeOnly?: boolean;
}

/**
 * Which files form which layer: the first entry whose path is the file or a folder holding it.
 * The two `virtio` files that import nothing are the base every layer may use.
 */
const LAYER_PATHS: ReadonlyArray<readonly [string, string]> = [
  ['src/virtio/feature-bits.ts', 'virtio-base'],
  ['src/virtio/code-name.ts', 'virtio-base'],
  ['src/virtio/', 'virtio'],
  ['src/protocol/', 'protocol'],
  ['src/virtqueue/', 'virtqueue'],
  ['src/log/', 'log'],
  ['src/native/', 'native'],
  ['src/device/', 'device'],
  ['src/driver/', 'driver'],
  ['src/transports/', 'transports'],
  ['src/compose/', 'compose'],
  ['src/hostchip/', 'hostchip'],
  ['src/board/', 'board'],
  ['src/daemon/', 'daemon'],
  ['src/control/', 'control'],
  ['src/conformance/', 'conformance'],
  ['src/bench/', 'bench'],
  ['src/trace/', 'trace'],
  ['src/dashboard/', 'dashboard'],
  ['src/mqtt/', 'mqtt'],
  ['src/cli/', 'cli'],
];

const BASE = ['virtio-base'];
const CORE = ['protocol', 'virtqueue', 'virtio', 'log', ...BASE];
const BELOW_SURFACES = [...CORE, 'native', 'device', 'driver', 'transports', 'compose', 'hostchip', 'board'];
const SURFACES = ['daemon', 'control', 'conformance', 'bench', 'trace', 'dashboard', 'mqtt', 'cli'];

/** What each layer may import besides itself. Files directly in src/ are entry points: anything. */
export const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  'virtio-base': [],
  log: [],
  native: [],
  protocol: BASE,
  virtqueue: BASE,
  virtio: ['virtqueue', ...BASE],
  device: CORE,
  driver: CORE,
  // Transports move rings, memory and notifications; they never see a GPIO message.
  transports: ['virtqueue', 'virtio', 'log', 'native', ...BASE],
  compose: ['device', 'driver', 'transports', 'board', ...CORE],
  // A line backend over the host's GPIO character device: implements device's LineBackend.
  hostchip: ['device', 'native', ...CORE],
  // Simulated boards: line backends with peripherals on the simulated lines; native for the
  // timerfd that wakes board time (board-timerfd.ts, loaded by the daemon only).
  board: ['device', 'native', ...CORE],
  ...Object.fromEntries(SURFACES.map((s) => [s, [...BELOW_SURFACES, ...SURFACES]])),
};

export function layerOf(file: string): string | null {
  for (const [path, layer] of LAYER_PATHS) if (file === path || file.startsWith(path)) return layer;
  if (/^src\/[^/]+\.ts$/.test(file)) return 'entry';
  return null;
}

/**
 * The imports of one source text that name a file of this tree (relative specifiers): import and
 * export declarations, and `import('...')` with a literal. `import type` is marked: it is erased
 * (verbatimModuleSyntax), so it takes part in the layer rule but cannot make a load-order cycle.
 */
export function importsOf(file: string, source: string): ImportEdge[] {
  const out: ImportEdge[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    if (spec.startsWith('./') || spec.startsWith('../'))
      out.push({ from: file, to: posix.normalize(posix.join(posix.dirname(file), spec)), typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier))
      add(node.moduleSpecifier.text, node.importClause?.isTypeOnly ?? false);
    else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier))
      add(node.moduleSpecifier.text, node.isTypeOnly);
    else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments.length === 1 &&
      ts.isStringLiteralLike(node.arguments[0])
    )
      add(node.arguments[0].text, false);
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(file, source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS));
  return out;
}

/** Every .ts file under `root`/src, as repository paths. */
export function sourceFiles(root: string): string[] {
  return readdirSync(join(root, 'src'), { recursive: true })
    .map((f) => posix.join('src', String(f).split(sep).join('/')))
    .filter((f) => f.endsWith('.ts'))
    .sort();
}

/** Every import of every .ts file under `root`/src. */
export function readImportGraph(root: string): ImportEdge[] {
  return sourceFiles(root).flatMap((f) => importsOf(f, readFileSync(join(root, f), 'utf8')));
}

/** Imports that break the layer rule, each as one sentence naming the two files. */
export function layerViolations(edges: readonly ImportEdge[]): string[] {
  const out: string[] = [];
  for (const { from, to } of edges) {
    const a = layerOf(from);
    const b = layerOf(to);
    if (a === null) out.push(`${from} is in no layer (add its folder to LAYER_PATHS)`);
    else if (b === null) out.push(`${from} imports ${to}, which is in no layer`);
    else if (b === 'entry' && a !== 'entry') out.push(`${from} (${a}) imports the entry point ${to}`);
    else if (a !== b && a !== 'entry' && !MAY_IMPORT[a]?.includes(b))
      out.push(
        `${from} (${a}) imports ${to} (${b}): ${a} may import ${MAY_IMPORT[a]?.join(', ') || 'nothing'}`,
      );
  }
  return [...new Set(out)];
}

/**
 * Groups of files that import each other in a circle at run time (strongly connected components of
 * two or more files, or a file importing itself); type-only imports are left out.
 */
export function importCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to, typeOnly } of edges) {
    if (typeOnly) continue;
    next.set(from, [...(next.get(from) ?? []), to]);
    if (!next.has(to)) next.set(to, []);
  }
  // Tarjan's algorithm, iteratively (no deep recursion on long chains).
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let counter = 0;
  for (const start of next.keys()) {
    if (index.has(start)) continue;
    const work: Array<{ node: string; i: number }> = [{ node: start, i: 0 }];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1];
      const succ = next.get(top.node) ?? [];
      if (top.i < succ.length) {
        const w = succ[top.i++];
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push({ node: w, i: 0 });
        } else if (onStack.has(w)) low.set(top.node, Math.min(low.get(top.node)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].node;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.node)!));
      }
      if (low.get(top.node) === index.get(top.node)) {
        const group: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          group.push(w);
        } while (w !== top.node);
        const selfLoop = (next.get(top.node) ?? []).includes(top.node);
        if (group.length > 1 || selfLoop) cycles.push(group.sort());
      }
    }
  }
  return cycles;
}

/**
 * The layer diagram the imports give: one arrow per pair of layers with at least one import.
 * Entry points (src/index.ts and its siblings) re-export the layers and are left out.
 */
export function layerDiagram(edges: readonly ImportEdge[]): string {
  const arrows = new Set<string>();
  for (const { from, to } of edges) {
    const a = layerOf(from);
    const b = layerOf(to);
    if (a && b && a !== b && a !== 'entry') arrows.add(`  ${a.replace('-', '_')} --> ${b.replace('-', '_')}`);
  }
  return ['```mermaid', 'flowchart TD', ...[...arrows].sort(), '```'].join('\n');
}

const BEGIN = '<!-- import diagram: generated by scripts/import-graph.ts --write -->';
const END = '<!-- end of import diagram -->';

/** The diagram block of a document, or null when it has none. */
export function documentedDiagram(doc: string): string | null {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  return a < 0 || b < a ? null : doc.slice(a + BEGIN.length, b).trim();
}

function main(): number {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const edges = readImportGraph(root);
  const diagram = layerDiagram(edges);
  const docPath = join(root, 'docs', 'architecture.md');
  const arg = process.argv[2];
  if (arg === '--write') {
    const doc = readFileSync(docPath, 'utf8');
    const a = doc.indexOf(BEGIN);
    const b = doc.indexOf(END);
    if (a < 0 || b < a) throw new Error(`${relative(root, docPath)} has no diagram markers`);
    writeFileSync(docPath, `${doc.slice(0, a + BEGIN.length)}\n${diagram}\n${doc.slice(b)}`);
    return 0;
  }
  if (arg !== '--check') {
    console.log(diagram);
    return 0;
  }
  const problems = [
    ...layerViolations(edges),
    ...importCycles(edges).map((c) => `import cycle: ${c.join(' → ')}`),
  ];
  if (documentedDiagram(readFileSync(docPath, 'utf8')) !== diagram)
    problems.push('docs/architecture.md: the import diagram is out of date (run with --write)');
  for (const p of problems) console.error(p);
  return problems.length === 0 ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main();
