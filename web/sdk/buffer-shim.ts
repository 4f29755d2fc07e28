/**
 * Just enough of Node's Buffer for siwe's ABNF parser (apg-js), which requires 'buffer' to
 * convert strings to code points. Bundlers alias 'buffer' to this file (see web/build.mjs)
 * so the browser bundle needs no full polyfill.
 */
type Encoding = 'utf8' | 'utf-8' | 'utf16le' | 'ascii' | 'latin1' | 'binary';

export class Buffer extends Uint8Array {
  static isBuffer(x: unknown): x is Buffer {
    return x instanceof Buffer;
  }

  static alloc(size: number): Buffer {
    return new Buffer(size);
  }

  static override from(value: string | ArrayLike<number> | Iterable<number>, encoding?: Encoding | ((v: number, k: number) => number)): Buffer {
    if (typeof value !== 'string') {
      const arr = Uint8Array.from(value as ArrayLike<number>);
      const b = new Buffer(arr.length);
      b.set(arr);
      return b;
    }
    const enc = typeof encoding === 'string' ? encoding.toLowerCase() : 'utf8';
    if (enc === 'utf16le') {
      const b = new Buffer(value.length * 2);
      for (let i = 0; i < value.length; i++) {
        const c = value.charCodeAt(i);
        b[i * 2] = c & 0xff;
        b[i * 2 + 1] = c >> 8;
      }
      return b;
    }
    if (enc === 'ascii' || enc === 'latin1' || enc === 'binary') {
      const b = new Buffer(value.length);
      for (let i = 0; i < value.length; i++) b[i] = value.charCodeAt(i) & 0xff;
      return b;
    }
    const bytes = new TextEncoder().encode(value);
    const b = new Buffer(bytes.length);
    b.set(bytes);
    return b;
  }

  override toString(encoding: Encoding = 'utf8'): string {
    const enc = encoding.toLowerCase();
    if (enc === 'utf16le') {
      let s = '';
      for (let i = 0; i + 1 < this.length; i += 2) s += String.fromCharCode(this[i]! | (this[i + 1]! << 8));
      return s;
    }
    if (enc === 'ascii' || enc === 'latin1' || enc === 'binary') {
      let s = '';
      for (const c of this) s += String.fromCharCode(c);
      return s;
    }
    return new TextDecoder().decode(this);
  }
}

export default { Buffer };
