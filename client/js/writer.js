// SPDX-License-Identifier: MIT
//
// FrameWriter: the frames of sidespand's wire protocol (a 4-byte big-endian length, then
// one msgpack value), written straight into one growable buffer, one after another, with
// no allocation per frame. Its bytes are those @msgpack/msgpack 3's
// `new Encoder({ useBigInt64: true }).encode()` gives for the same value, byte for byte
// (tests/js/writer.test.mjs checks it), but for an integer past 32 bits, which it sends as
// an integer and @msgpack/msgpack as a float (number() says why). Only the
// values the span processor makes are written: null and undefined (nil), booleans,
// numbers, strings, bigints, Uint8Arrays (bin), arrays and plain objects (maps, keys in
// Object.keys order); anything else throws.

const INITIAL_SIZE = 64 << 10;
// A buffer up to this size is used again once the socket is done with it; a larger one
// (grown while the daemon was away) goes to the garbage collector.
const KEEP_SIZE = 1 << 20;
// take() copies up to this many bytes out (from Node's pool) and keeps its buffer: a FLUSH
// alone is not worth a buffer of its own while the last one is still being written.
const COPY_SIZE = 4 << 10;
// @msgpack/msgpack's default maxDepth: deeper values throw there, and so here.
const MAX_DEPTH = 100;
// @msgpack/msgpack writes a string of up to this many UTF-16 units by hand and a longer
// one with TextEncoder. They differ on a lone surrogate: by hand it goes as its own three
// bytes (not valid UTF-8), TextEncoder (as Buffer.write) puts U+FFFD. Both are kept.
const SHORT_STRING = 50;

/** Thrown when the frame being written is already past its limit (begin()'s maxBody). */
export class FrameTooLarge extends Error {}

export class FrameWriter {
  constructor(size = INITIAL_SIZE) {
    this.own = new WeakSet(); // the memory of the buffers it made: recycle() takes back only those
    this._use(Buffer.allocUnsafeSlow(size));
    this.pos = 0; // bytes written: the frames not yet taken
    this.limit = Infinity; // the current frame may not end past this offset
    this.spare = null; // a buffer the socket is done with, used again by take()
  }

  _use(buf) {
    this.own.add(buf.buffer);
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  }

  // Room for n more bytes: the buffer doubles until they fit, keeping what was written.
  _ensure(n) {
    if (this.pos + n > this.buf.length) this._grow(n);
  }

  _grow(n) {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const buf = Buffer.allocUnsafeSlow(size);
    this.buf.copy(buf, 0, 0, this.pos);
    this._use(buf);
  }

  // ---- frames ----

  /** Start a frame: its length is reserved, filled in by finish(). Returns its offset. */
  begin(maxBody = Infinity) {
    const start = this.pos;
    this._ensure(4);
    this.pos += 4;
    this.limit = this.pos + maxBody;
    return start;
  }

  /** End the frame begun at start: its length is written in front; returns the body's. */
  finish(start) {
    const n = this.pos - start - 4;
    this.view.setUint32(start, n);
    this.limit = Infinity;
    return n;
  }

  /** Take the frame begun at start back out, as if never written. */
  rollback(start) {
    this.pos = start;
    this.limit = Infinity;
  }

  /**
   * The bytes written so far, handed over, and the writer empty. A few are copied out; more,
   * the buffer itself is given and the writer goes on in another, for the socket may read
   * it until its write is done (then recycle() it).
   */
  take() {
    if (this.pos <= COPY_SIZE) {
      const out = Buffer.allocUnsafe(this.pos);
      this.buf.copy(out, 0, 0, this.pos);
      this.pos = 0;
      return out;
    }
    const out = this.buf.subarray(0, this.pos);
    const next = this.spare || Buffer.allocUnsafeSlow(Math.min(this.buf.length, KEEP_SIZE));
    this.spare = null;
    this._use(next);
    this.pos = 0;
    return out;
  }

  /** A chunk take() gave, once written: its buffer serves the next take(). */
  recycle(chunk) {
    const ab = chunk.buffer;
    if (this.spare === null && this.own.has(ab) && ab !== this.buf.buffer && ab.byteLength <= KEEP_SIZE) {
      this.spare = Buffer.from(ab);
    }
  }

  // ---- msgpack ----

  value(v, depth = 1) {
    if (depth > MAX_DEPTH) throw new Error(`too deep: ${depth}`);
    switch (typeof v) {
      case 'string':
        this.string(v);
        return;
      case 'number':
        this.number(v);
        return;
      case 'bigint':
        this.bigint(v);
        return;
      case 'boolean':
        this._byte(v ? 0xc3 : 0xc2);
        return;
      case 'undefined':
        this._byte(0xc0);
        return;
      case 'object':
        break;
      default:
        throw new TypeError(`cannot encode a ${typeof v}`);
    }
    if (v === null) {
      this._byte(0xc0);
    } else if (Array.isArray(v)) {
      const n = v.length;
      this._header(n, 0x90, 0xdc);
      for (let i = 0; i < n; i++) this.value(v[i], depth + 1);
    } else if (v instanceof Uint8Array) {
      this.binary(v);
    } else {
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw new TypeError('cannot encode this object');
      const keys = Object.keys(v);
      const n = keys.length;
      this._header(n, 0x80, 0xde);
      for (let i = 0; i < n; i++) {
        this.string(keys[i]);
        this.value(v[keys[i]], depth + 1);
      }
    }
  }

  _byte(b) {
    if (this.pos >= this.buf.length) this._grow(1);
    this.buf[this.pos++] = b;
  }

  // An array's or a map's header: fix (under 16), 16-bit or 32-bit count.
  _header(n, fix, code16) {
    this._ensure(5);
    const buf = this.buf;
    const p = this.pos;
    if (n < 16) {
      buf[p] = fix + n;
      this.pos = p + 1;
    } else if (n < 0x10000) {
      buf[p] = code16;
      buf[p + 1] = n >>> 8;
      buf[p + 2] = n;
      this.pos = p + 3;
    } else if (n <= 0xffffffff) {
      buf[p] = code16 + 1;
      this.view.setUint32(p + 1, n);
      this.pos = p + 5;
    } else {
      throw new RangeError(`too many items: ${n}`);
    }
  }

  // A safe integer as the smallest int or uint that holds it, as @msgpack/msgpack does up to
  // 32 bits; past them as a uint 64 or an int 64, where @msgpack/msgpack (with useBigInt64)
  // sent a float 64: an attribute such as Date.now() stays an integer, as the OpenTelemetry
  // SDK's own exporter sends it (intValue). Anything else, a float 64.
  number(v) {
    this._ensure(9);
    const buf = this.buf;
    const p = this.pos;
    if (Number.isSafeInteger(v)) {
      if (v >= 0) {
        if (v < 0x80) {
          buf[p] = v;
          this.pos = p + 1;
          return;
        }
        if (v < 0x100) {
          buf[p] = 0xcc;
          buf[p + 1] = v;
          this.pos = p + 2;
          return;
        }
        if (v < 0x10000) {
          buf[p] = 0xcd;
          buf[p + 1] = v >>> 8;
          buf[p + 2] = v;
          this.pos = p + 3;
          return;
        }
        if (v < 0x100000000) {
          buf[p] = 0xce;
          this.view.setUint32(p + 1, v);
          this.pos = p + 5;
          return;
        }
        this.bigint(BigInt(v)); // uint 64
        return;
      } else {
        if (v >= -0x20) {
          buf[p] = v; // 0xe0 | (v + 0x20)
          this.pos = p + 1;
          return;
        }
        if (v >= -0x80) {
          buf[p] = 0xd0;
          buf[p + 1] = v;
          this.pos = p + 2;
          return;
        }
        if (v >= -0x8000) {
          buf[p] = 0xd1;
          buf[p + 1] = v >> 8;
          buf[p + 2] = v;
          this.pos = p + 3;
          return;
        }
        if (v >= -0x80000000) {
          buf[p] = 0xd2;
          this.view.setInt32(p + 1, v);
          this.pos = p + 5;
          return;
        }
        this.bigint(BigInt(v)); // int 64
        return;
      }
    }
    buf[p] = 0xcb;
    this.view.setFloat64(p + 1, v);
    this.pos = p + 9;
  }

  // uint64 from 0 up, int64 below, whatever the size: wrapped to 64 bits as DataView does,
  // as @msgpack/msgpack does.
  bigint(v) {
    this._ensure(9);
    const p = this.pos;
    if (v >= 0n) {
      this.buf[p] = 0xcf;
      this.view.setBigUint64(p + 1, v);
    } else {
      this.buf[p] = 0xd3;
      this.view.setBigInt64(p + 1, v);
    }
    this.pos = p + 9;
  }

  binary(b) {
    const n = b.length;
    if (this.pos + n > this.limit) throw new FrameTooLarge();
    this._ensure(5 + n);
    const buf = this.buf;
    let p = this.pos;
    if (n < 0x100) {
      buf[p++] = 0xc4;
      buf[p++] = n;
    } else if (n < 0x10000) {
      buf[p++] = 0xc5;
      buf[p++] = n >>> 8;
      buf[p++] = n;
    } else if (n <= 0xffffffff) {
      buf[p] = 0xc6;
      this.view.setUint32(p + 1, n);
      p += 5;
    } else {
      throw new RangeError(`too large a binary: ${n}`);
    }
    if (n <= 16) {
      for (let i = 0; i < n; i++) buf[p + i] = b[i]; // ids: a call to set() costs more
    } else {
      buf.set(b, p);
    }
    this.pos = p + n;
  }

  // fixstr, str8, str16 or str32 by the UTF-8 length. The string is written after the
  // header its length in UTF-16 units calls for (its UTF-8 length is at least that); when
  // the UTF-8 length calls for a longer header, it moves up.
  string(s) {
    const n = s.length;
    if (n <= SHORT_STRING) {
      this._ensure(2 + 3 * n); // at most 150 bytes: fixstr or str8
      const buf = this.buf;
      const at = this.pos;
      const start = at + (n < 32 ? 1 : 2);
      let p = start;
      for (let i = 0; i < n; i++) {
        let c = s.charCodeAt(i);
        if (c < 0x80) {
          buf[p++] = c;
          continue;
        }
        if (c < 0x800) {
          buf[p++] = 0xc0 | (c >> 6);
        } else {
          if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
            const d = s.charCodeAt(i + 1);
            if ((d & 0xfc00) === 0xdc00) {
              i++;
              c = ((c & 0x3ff) << 10) + (d & 0x3ff) + 0x10000;
            }
          }
          if (c < 0x10000) {
            buf[p++] = 0xe0 | (c >> 12);
            buf[p++] = 0x80 | ((c >> 6) & 0x3f);
          } else {
            buf[p++] = 0xf0 | (c >> 18);
            buf[p++] = 0x80 | ((c >> 12) & 0x3f);
            buf[p++] = 0x80 | ((c >> 6) & 0x3f);
          }
        }
        buf[p++] = 0x80 | (c & 0x3f);
      }
      const len = p - start;
      if (len < 32) {
        buf[at] = 0xa0 | len;
      } else {
        if (n < 32) {
          buf.copyWithin(start + 1, start, p);
          p++;
        }
        buf[at] = 0xd9;
        buf[at + 1] = len;
      }
      this.pos = p;
      return;
    }
    if (this.pos + n > this.limit) throw new FrameTooLarge();
    this._ensure(5 + 3 * n);
    const buf = this.buf;
    const at = this.pos;
    const guess = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
    const len = buf.write(s, at + guess);
    const head = len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
    if (len > 0xffffffff) throw new RangeError(`too long a string: ${len} bytes`);
    if (head !== guess) buf.copyWithin(at + head, at + guess, at + guess + len);
    if (head === 2) {
      buf[at] = 0xd9;
      buf[at + 1] = len;
    } else if (head === 3) {
      buf[at] = 0xda;
      buf[at + 1] = len >>> 8;
      buf[at + 2] = len;
    } else {
      buf[at] = 0xdb;
      this.view.setUint32(at + 1, len);
    }
    this.pos = at + head + len;
  }
}

/** One whole frame for msg, in a Buffer of its own (HELLO, once per connection). */
export function encodeFrame(msg) {
  const w = new FrameWriter(256);
  const start = w.begin();
  w.value(msg);
  w.finish(start);
  return w.buf.subarray(0, w.pos);
}
