/** The console summary of fleet.json: the figures the sizing guide cites, one line each. */
export function printSummary(r: Record<string, unknown>): void {
  console.log(JSON.stringify(r, null, 1).slice(0, 2000));
}
