/** The orchestrator's console output: timestamped progress lines and byte sizes people read. */

export const log = (msg: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

export const fmtB = (b: number) => (Math.abs(b) >= 1024 * 1024 ? `${(b / 1024 / 1024).toFixed(1)} MiB` : Math.abs(b) >= 1024 ? `${(b / 1024).toFixed(2)} KiB` : `${Math.round(b)} B`);
