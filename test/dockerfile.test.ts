import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
const lines = dockerfile.split('\n').map((l) => l.trim());

/** Node.js release lines still supported (LTS) in late 2026; 20 reached its end of life in April 2026. */
const SUPPORTED_MAJORS = [22, 24];

describe('Dockerfile', () => {
  it('builds both stages on one NODE_IMAGE argument defaulting to a supported Node.js LTS on bookworm', () => {
    const arg = lines.find((l) => l.startsWith('ARG NODE_IMAGE='));
    expect(arg).toBeDefined();
    const image = arg!.slice('ARG NODE_IMAGE='.length);
    const m = /^node:(\d+)-bookworm-slim(@sha256:[0-9a-f]{64})?$/.exec(image);
    expect(m, image).not.toBeNull();
    expect(SUPPORTED_MAJORS).toContain(Number(m![1]));
    // The argument is declared before the first FROM, so every stage can use it.
    const froms = lines.filter((l) => l.startsWith('FROM '));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toMatch(/^FROM \$\{NODE_IMAGE\} AS \w+$/);
    expect(lines.indexOf(arg!)).toBeLessThan(lines.indexOf(froms[0]!));
  });

  it('documents pinning the base image by digest and refuses an end-of-life Node.js', () => {
    expect(dockerfile).toMatch(/--build-arg NODE_IMAGE=node:\d+-bookworm-slim@sha256:/);
    expect(dockerfile).toMatch(/if \(major < 22\)/);
  });

  it('installs the runtime libraries of the Debian release the base image is on', () => {
    // bookworm package names; a base on another release must change them together.
    expect(dockerfile).toMatch(/apt-get install[^\n]*libabsl20220623/);
    expect(dockerfile).toContain('bookworm');
  });
});
