import { describe, expect, it } from 'vitest';
import { errorCodeOf, isConnectivityError } from './writer.ts';

/** Which database errors mean "unreachable, send again" and which mean "refused". */
describe('database error classification', () => {
  const withCode = (code: string) => Object.assign(new Error('x'), { code });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', '57P01', '57P02', '57P03', '53300', '25006', '08006', '08001'])(
    'treats %s as the database being unreachable',
    (code) => {
      expect(isConnectivityError(withCode(code))).toBe(true);
    },
  );

  it.each(['22021', '23505', '42P01', 'EACCES', '', '8006'])('treats %s as a refusal', (code) => {
    expect(isConnectivityError(withCode(code))).toBe(false);
  });

  it('reads connectivity from the first line of the message, and from causes up to four deep', () => {
    expect(isConnectivityError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectivityError(new Error('FATAL: the database system is starting up'))).toBe(true);
    expect(isConnectivityError(new Error('syntax error\nConnection terminated'))).toBe(false);
    const wrap = (inner: unknown, n: number): unknown => (n === 0 ? inner : wrap(Object.assign(new Error('wrapped'), { cause: inner }), n - 1));
    expect(isConnectivityError(wrap(withCode('ECONNREFUSED'), 3))).toBe(true);
    expect(isConnectivityError(wrap(withCode('ECONNREFUSED'), 4))).toBe(false);
    expect(isConnectivityError(null)).toBe(false);
    expect(isConnectivityError('ECONNREFUSED')).toBe(false);
  });

  it('names an error by its code (or a cause’s, up to four deep), else by its name, never by its message', () => {
    expect(errorCodeOf(withCode('23505'))).toBe('23505');
    const wrap = (inner: unknown, n: number): unknown => (n === 0 ? inner : wrap(Object.assign(new Error('wrapped'), { cause: inner }), n - 1));
    expect(errorCodeOf(wrap(withCode('57P01'), 3))).toBe('57P01');
    expect(errorCodeOf(wrap(withCode('57P01'), 4))).toBe('Error');
    expect(errorCodeOf(Object.assign(new TypeError('secret text'), { code: '' }))).toBe('TypeError');
    expect(errorCodeOf('secret text')).toBe('unknown');
    expect(errorCodeOf(null)).toBe('unknown');
  });
});
