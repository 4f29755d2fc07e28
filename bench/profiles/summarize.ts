/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): self time by function and by package or
 * project folder, and inclusive time of the functions given with --focus. Also writes the
 * folded stacks (`a;b;c <microseconds>`), the input of any flame graph renderer.
 *
 *   node bin/run-ts.mjs bench/profiles/summarize.ts <file.cpuprofile> [--top=40] [--folded=out.folded] [--focus=name,name]
 */
import { readFileSync, writeFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  console.error('usage: summarize.ts <file.cpuprofile> [--top=40] [--folded=out.folded] [--focus=a,b]');
  process.exit(2);
}
const flag = (name: string) => rest.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const top = Number(flag('top') ?? 40);
const focus = (flag('focus') ?? '').split(',').filter(Boolean);

const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const selfUs = new Map<number, number>();
p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

/** `node_modules/<pkg>` or the project folder a frame's file is in; `(native)` and friends as they are. */
function area(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + 13).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (url.startsWith('node:')) return url;
  const m = /\/(signaling|infra|db|protocol|sfu|config|cli)\/(.*)$/.exec(url);
  return m ? `${m[1]}/${m[2]}` : url.replace(/^file:\/\//, '');
}
const label = (n: Node) => `${n.callFrame.functionName || '(anonymous)'} ${area(n.callFrame.url, n.callFrame.functionName)}:${n.callFrame.lineNumber + 1}`;

const fnSelf = new Map<string, number>();
const areaSelf = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  fnSelf.set(label(n), (fnSelf.get(label(n)) ?? 0) + us);
  const a = area(n.callFrame.url, n.callFrame.functionName);
  areaSelf.set(a, (areaSelf.get(a) ?? 0) + us);
}
const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
const print = (title: string, m: Map<string, number>, n: number) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(us)}  ${k}`);
};
console.log(`${file}: ${(total / 1000).toFixed(0)} ms of samples`);
print('self time by package / project file', areaSelf, top);
print('self time by function', fnSelf, top);

// Inclusive time of focus functions (a frame counted once per sample however deep it recurses).
if (focus.length) {
  const incl = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      const name = n.callFrame.functionName;
      if (focus.includes(name) && !seen.has(name)) {
        seen.add(name);
        incl.set(name, (incl.get(name) ?? 0) + us);
      }
    }
  }
  print('inclusive time of focus functions', incl, focus.length);
}

const foldedOut = flag('folded');
if (foldedOut) {
  const folded = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const stack: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      if (n.callFrame.functionName === '(root)') break;
      stack.push(label(n).replace(/;/g, ','));
    }
    const k = stack.reverse().join(';');
    folded.set(k, (folded.get(k) ?? 0) + us);
  }
  writeFileSync(foldedOut, [...folded].map(([k, us]) => `${k} ${us}`).join('\n') + '\n');
  console.log(`\nwrote ${foldedOut}`);
}
