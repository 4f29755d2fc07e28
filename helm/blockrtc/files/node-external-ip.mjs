// Writes this pod's Node ExternalIP (from the Kubernetes API, with the pod's service
// account) to the file named by argv[2]. Used where the node's own IP is private behind a
// 1:1 NAT, so media must be announced on the external address.
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';

const out = process.argv[2];
const node = process.env.NODE_NAME;
const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
const host = process.env.KUBERNETES_SERVICE_HOST;
const port = process.env.KUBERNETES_SERVICE_PORT || '443';
if (!out || !node || !host) {
  console.error('node-external-ip: needs an output file, NODE_NAME and KUBERNETES_SERVICE_HOST');
  process.exit(2);
}

function get() {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port,
        path: `/api/v1/nodes/${encodeURIComponent(node)}`,
        ca: readFileSync(`${sa}/ca.crt`),
        headers: { Authorization: `Bearer ${readFileSync(`${sa}/token`, 'utf8').trim()}` },
        timeout: 5000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`HTTP ${res.statusCode}: ${body.slice(0, 200)}`))));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

for (let attempt = 1; ; attempt++) {
  try {
    const n = await get();
    const ip = (n.status?.addresses ?? []).find((a) => a.type === 'ExternalIP')?.address;
    if (!ip) throw new Error(`node ${node} has no ExternalIP address`);
    writeFileSync(out, ip);
    console.log(`node-external-ip: ${node} -> ${ip}`);
    process.exit(0);
  } catch (err) {
    console.error(`node-external-ip: attempt ${attempt}: ${err instanceof Error ? err.message : err}`);
    if (attempt >= 30) process.exit(1);
    await new Promise((r) => setTimeout(r, 2000));
  }
}
