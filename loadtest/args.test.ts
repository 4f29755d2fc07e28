import { describe, expect, it } from 'vitest';
import { parseAddresses, parseArgs, UsageError } from './args.ts';

describe('loadtest flags', () => {
  it('parses flags, both --flag value and --flag=value', () => {
    const o = parseArgs(['--url', 'http://a:1,http://b:2/', '--users=40', '--workers', '2', '--calls', '2', '--video', '--token-cache', 'none']);
    expect(o).toMatchObject({ urls: ['http://a:1', 'http://b:2'], users: 40, workers: 2, calls: 2, video: true, tokenCache: null });
  });

  it('takes a ramp instead of a connect rate', () => {
    expect(parseArgs(['--users', '100', '--ramp', '4']).connectRate).toBe(25);
    expect(() => parseArgs(['--ramp', '4', '--connect-rate', '10'])).toThrow('not both');
  });

  it('expands source address ranges', () => {
    expect(parseAddresses('127.0.0.1-127.0.0.3,10.0.0.9')).toEqual(['127.0.0.1', '127.0.0.2', '127.0.0.3', '10.0.0.9']);
    expect(parseAddresses('127.0.0.5-6')).toEqual(['127.0.0.5', '127.0.0.6']);
    expect(() => parseAddresses('127.0.0.9-127.0.0.2')).toThrow(UsageError);
  });

  it('refuses values above a maximum, naming the flag and the limit', () => {
    expect(() => parseArgs(['--users', '2000000'])).toThrow('--users 2000000 is above the maximum of 1000000');
    expect(() => parseArgs(['--msgs-per-min', '601'])).toThrow('--msgs-per-min 601 is above the maximum of 600');
    expect(() => parseArgs(['--participants', '17'])).toThrow('above the maximum of 16');
  });

  it('refuses combinations one machine cannot hold', () => {
    expect(() => parseArgs(['--users', '40000', '--workers', '2'])).toThrow(/per worker, above the maximum of 19000/);
    expect(() => parseArgs(['--users', '60000', '--workers', '4'])).toThrow(/add --source-addresses/);
    expect(() => parseArgs(['--users', '10', '--calls', '3', '--participants', '4'])).toThrow(/add --users/);
    expect(() => parseArgs(['--users', '11'])).toThrow(/even/);
    expect(() => parseArgs(['--url', 'ftp://x'])).toThrow(/http/);
    expect(() => parseArgs(['--nope'])).toThrow('unknown flag --nope');
  });
});
