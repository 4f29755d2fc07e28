/**
 * Renders the Helm chart (helm/blockrtc) for the default values and every value set in
 * helm/ci/*.yaml, validates each manifest against the Kubernetes schemas
 * (kubernetes-models), and checks the properties the deployment depends on: probes,
 * SFU ports, secrets only by reference, resources, drain grace periods, the coturn
 * configuration, and that the schema rejects bad values with a clear message.
 *
 * helm comes from helm/tools/install-helm.sh (cached in .cache/helm). YAML is parsed by
 * helm itself (`fromYaml` in a throw-away chart), so no YAML library is needed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { DaemonSet, Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { loadConfig, type Mode } from '../config/config.ts';
import { coturnConfig, DENIED_PEER_RANGES } from '../turn/coturn.ts';

const HELM_DIR = dirname(fileURLToPath(import.meta.url));
const CHART = join(HELM_DIR, 'blockrtc');

// ---------------------------------------------------------------------------------------
// Minimal shapes of what the chart renders (validated by kubernetes-models first).

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
}
interface Probe {
  httpGet?: { path: string; port: string | number };
  tcpSocket?: { port: string | number };
  exec?: { command: string[] };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number; hostPort?: number; protocol?: string }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  securityContext?: { allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[]; add?: string[] } };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  terminationGracePeriodSeconds?: number;
  hostNetwork?: boolean;
  volumes?: { name: string; secret?: { secretName: string } }[];
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec?: Record<string, unknown> & { template?: { spec: PodSpec } };
  data?: Record<string, string>;
}
type Values = Record<string, unknown>;

type Model = new (data: never) => { validate(): void };
const MODELS: Record<string, Model> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'batch/v1/Job': Job,
  'networking.k8s.io/v1/Ingress': Ingress,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
};

// ---------------------------------------------------------------------------------------
// helm

let helm = '';
let work = '';

function run(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(helm, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function mustRun(args: string[]): string {
  const r = run(args);
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** YAML documents -> objects, parsed by helm's own `fromYaml` in a throw-away chart. */
function parseYamlDocs(docs: string[]): unknown[] {
  const dir = mkdtempSync(join(work, 'yaml2json-'));
  mkdirSync(join(dir, 'templates'));
  mkdirSync(join(dir, 'docs'));
  writeFileSync(join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: yaml2json\nversion: 0.0.0\n');
  writeFileSync(
    join(dir, 'templates', 'out.yaml'),
    '{{- $out := list -}}\n' +
      '{{- range $path, $_ := .Files.Glob "docs/*.yaml" -}}\n' +
      '{{- $out = append $out (dict "path" $path "doc" ($.Files.Get $path | fromYaml)) -}}\n' +
      '{{- end -}}\n' +
      '{{ dict "docs" $out | toJson }}\n',
  );
  docs.forEach((d, i) => writeFileSync(join(dir, 'docs', `${String(i).padStart(5, '0')}.yaml`), d));
  const out = mustRun(['template', 'y', dir]);
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no JSON in the converter's output:\n${out}`);
  const parsed = JSON.parse(line) as { docs: { path: string; doc: Record<string, unknown> }[] };
  return parsed.docs
    .sort((a, b) => a.path.localeCompare(b.path))
    .map(({ path, doc }) => {
      if (doc && typeof doc.Error === 'string') throw new Error(`${path}: YAML parse error: ${doc.Error}`);
      return doc;
    });
}

function splitDocs(text: string): string[] {
  // A line that is exactly `---` separates documents (block scalars are always indented).
  return text
    .split(/^---[ \t]*$/m)
    .filter((d) => d.split('\n').some((l) => l.trim() !== '' && !l.trimStart().startsWith('#')));
}

interface Rendered {
  name: string;
  values: Values;
  manifests: Manifest[];
}

function renderSet(name: string, valueFiles: string[]): Rendered {
  const outDir = mkdtempSync(join(work, `render-${name}-`));
  mustRun(['template', 'blockrtc', CHART, '--namespace', 'blockrtc', ...valueFiles.flatMap((f) => ['-f', f]), '--output-dir', outDir]);
  const docs = walk(outDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => splitDocs(readFileSync(f, 'utf8')));
  const manifests = parseYamlDocs(docs) as Manifest[];
  // Values: the chart's defaults overlaid with the set's files (helm merges maps the same way).
  const layers = parseYamlDocs([readFileSync(join(CHART, 'values.yaml'), 'utf8'), ...valueFiles.map((f) => readFileSync(f, 'utf8'))]) as Values[];
  return { name, values: layers.reduce<Values>((acc, v) => merge(acc, v ?? {}), {}), manifests };
}

function merge(a: Values, b: Values): Values {
  const out: Values = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    if (v === null) delete out[k];
    else if (isObject(v) && isObject(prev)) out[k] = merge(prev, v);
    else out[k] = v;
  }
  return out;
}

function isObject(v: unknown): v is Values {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function get(values: Values, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (isObject(o) ? o[k] : undefined), values);
}

// ---------------------------------------------------------------------------------------
// helpers over manifests

const WORKLOADS = new Set(['Deployment', 'DaemonSet', 'StatefulSet', 'Job']);

function workloads(r: Rendered): (Manifest & { spec: { template: { spec: PodSpec } } })[] {
  return r.manifests.filter((m): m is Manifest & { spec: { template: { spec: PodSpec } } } => WORKLOADS.has(m.kind) && !!m.spec?.template);
}

function allContainers(pod: PodSpec): Container[] {
  return [...(pod.initContainers ?? []), ...pod.containers];
}

function find(r: Rendered, kind: string, suffix: string): Manifest | undefined {
  return r.manifests.find((m) => m.kind === kind && m.metadata.name.endsWith(suffix));
}

function envOf(c: Container, name: string): EnvVar | undefined {
  return c.env?.find((e) => e.name === name);
}

const SECRET_ENV = /SECRET|PASSWORD|TOKEN|DATABASE_URL|REDIS_URL|PRIVATE_KEY/;

/**
 * The environment a container would see, with secret references replaced by valid dummy
 * values and `$(VAR)` references expanded as the kubelet does.
 */
function containerEnv(c: Container): Record<string, string> {
  const dummy: Record<string, string> = {
    JWT_SECRET: 'j'.repeat(40),
    TURN_SECRET: 't'.repeat(24),
    DATABASE_URL: 'postgres://u:p@db:5432/blockrtc',
    REDIS_URL: 'redis://:p@redis:6379',
  };
  const field: Record<string, string> = { 'metadata.name': 'blockrtc-pod-abc12', 'status.hostIP': '198.51.100.7', 'status.podIP': '198.51.100.7', 'spec.nodeName': 'node-1' };
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string) => env[v] ?? m);
    else if (e.valueFrom?.secretKeyRef) env[e.name] = dummy[e.name] ?? 's'.repeat(40);
    else if (e.valueFrom?.fieldRef) env[e.name] = field[e.valueFrom.fieldRef.fieldPath] ?? 'x';
  }
  return env;
}

function blockrtcMode(c: Container): Mode | null {
  const words = [...(c.command ?? []), ...(c.args ?? [])].join(' ');
  const m = /\b(signaling|sfu|migrate)\b/.exec(words);
  return m ? (m[1] as Mode) : null;
}

// ---------------------------------------------------------------------------------------

const sets: { name: string; files: string[] }[] = [
  { name: 'default', files: [] },
  ...readdirSync(join(HELM_DIR, 'ci'))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => ({ name: basename(f, '.yaml'), files: [join(HELM_DIR, 'ci', f)] })),
];
const rendered = new Map<string, Rendered>();

beforeAll(() => {
  const out = execFileSync('bash', [join(HELM_DIR, 'tools', 'install-helm.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  helm = out.trim().split('\n').pop() ?? '';
  work = mkdtempSync(join(tmpdir(), 'blockrtc-chart-test-'));
  for (const s of sets) rendered.set(s.name, renderSet(s.name, s.files));
}, 180_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function each(): Rendered[] {
  return sets.map((s) => rendered.get(s.name) as Rendered);
}

describe('helm chart', () => {
  it('has at least the default and two other value sets', () => {
    expect(sets.length).toBeGreaterThanOrEqual(3);
    expect(sets.map((s) => s.name)).toEqual(expect.arrayContaining(['default', 'production', 'no-turn']));
  });

  it('renders manifests that validate against the Kubernetes schemas', () => {
    for (const r of each()) {
      expect(r.manifests.length, r.name).toBeGreaterThan(5);
      for (const m of r.manifests) {
        const id = `${r.name}: ${m.kind}/${m.metadata?.name}`;
        if (m.apiVersion === 'monitoring.coreos.com/v1' && m.kind === 'ServiceMonitor') {
          // A CRD kubernetes-models does not cover: check the fields Prometheus needs.
          const spec = m.spec as { selector?: { matchLabels?: object }; endpoints?: { port?: string; path?: string }[] };
          expect(spec.selector?.matchLabels, id).toBeTruthy();
          expect(spec.endpoints?.[0]?.port, id).toBe('metrics');
          expect(spec.endpoints?.[0]?.path, id).toBe('/metrics');
          continue;
        }
        const Model = MODELS[`${m.apiVersion}/${m.kind}`];
        expect(Model, `${id}: no model for ${m.apiVersion}`).toBeDefined();
        if (!Model) continue;
        expect(() => new Model(m as never).validate(), id).not.toThrow();
      }
    }
  });

  it('gives every container resource requests and a memory limit', () => {
    for (const r of each()) {
      for (const w of workloads(r)) {
        for (const c of allContainers(w.spec.template.spec)) {
          const id = `${r.name}: ${w.kind}/${w.metadata.name} ${c.name}`;
          expect(c.resources?.requests?.cpu, id).toBeDefined();
          expect(c.resources?.requests?.memory, id).toBeDefined();
          expect(c.resources?.limits?.memory, id).toBeDefined();
        }
      }
    }
  });

  it('probes liveness on /healthz and readiness on /readyz, never the same endpoint', () => {
    for (const r of each()) {
      const probed = new Set<string>();
      for (const w of workloads(r)) {
        for (const c of w.spec.template.spec.containers) {
          const id = `${r.name}: ${w.kind}/${w.metadata.name} ${c.name}`;
          if (c.livenessProbe && c.readinessProbe) expect(c.livenessProbe, id).not.toEqual(c.readinessProbe);
          const mode = blockrtcMode(c);
          if (mode === 'signaling' || mode === 'sfu') {
            expect(c.livenessProbe?.httpGet?.path, id).toBe('/healthz');
            expect(c.readinessProbe?.httpGet?.path, id).toBe('/readyz');
            expect(c.livenessProbe?.httpGet?.port, id).toEqual(c.readinessProbe?.httpGet?.port);
            probed.add(mode);
          }
        }
      }
      // Both tiers were found and checked in every value set.
      expect([...probed].sort(), r.name).toEqual(['sfu', 'signaling']);
    }
  });

  it('gives each signaling / SFU container an environment the BlockRTC config accepts', () => {
    for (const r of each()) {
      const checked = new Set<string>();
      for (const w of workloads(r)) {
        for (const c of w.spec.template.spec.containers) {
          const mode = blockrtcMode(c);
          if (!mode || !c.image.includes(String(get(r.values, 'image.repository')))) continue;
          const env = containerEnv(c);
          if (mode === 'sfu' && !env.SFU_ANNOUNCED_ADDRESS) env.SFU_ANNOUNCED_ADDRESS = '198.51.100.8'; // written by the init container
          expect(() => loadConfig(mode, env), `${r.name}: ${w.metadata.name} (${mode})`).not.toThrow();
          checked.add(mode);
        }
      }
      expect([...checked].sort(), r.name).toEqual(expect.arrayContaining(['sfu', 'signaling']));
    }
  });

  it('exposes the SFU WebRtcServer ports portBase..portBase+workers-1 over UDP and TCP, matching the env', () => {
    const sources = new Set<string>();
    for (const r of each()) {
      const ds = find(r, 'DaemonSet', '-sfu');
      expect(ds, r.name).toBeDefined();
      const pod = ds?.spec?.template?.spec as PodSpec;
      const c = pod.containers.find((x) => x.name === 'sfu') as Container;
      const workers = Number(get(r.values, 'sfu.workers'));
      const portBase = Number(get(r.values, 'sfu.portBase'));
      expect(envOf(c, 'SFU_WORKERS')?.value, r.name).toBe(String(workers));
      expect(envOf(c, 'SFU_PORT_BASE')?.value, r.name).toBe(String(portBase));
      const expected = Array.from({ length: workers }, (_, i) => portBase + i);
      for (const protocol of ['UDP', 'TCP']) {
        const ports = (c.ports ?? []).filter((p) => p.protocol === protocol && p.name?.startsWith('rtc-'));
        expect(ports.map((p) => p.containerPort), `${r.name} ${protocol}`).toEqual(expected);
        expect(ports.map((p) => p.hostPort), `${r.name} ${protocol} hostPort`).toEqual(expected);
      }
      expect(pod.hostNetwork ?? false, r.name).toBe(get(r.values, 'sfu.hostNetwork'));
      expect(envOf(c, 'NODE_ID')?.valueFrom?.fieldRef?.fieldPath, r.name).toBe('metadata.name');
      const announced = get(r.values, 'sfu.announcedAddress.source');
      sources.add(String(announced));
      if (announced === 'hostIP') expect(envOf(c, 'SFU_ANNOUNCED_ADDRESS')?.value, r.name).toBe('$(HOST_IP)');
      else if (announced === 'value') expect(envOf(c, 'SFU_ANNOUNCED_ADDRESS')?.value, r.name).toBe(get(r.values, 'sfu.announcedAddress.value'));
      else if (announced === 'nodeExternalIP') expect(pod.initContainers?.map((i) => i.name), r.name).toContain('resolve-address');
      else expect.fail(`${r.name}: unexpected sfu.announcedAddress.source ${String(announced)}`);
    }
    // Every way of announcing the address is rendered by some value set.
    expect([...sources].sort()).toEqual(['hostIP', 'nodeExternalIP', 'value']);
  });

  it('never inlines a secret: secret env comes from secretKeyRef and no secret value appears outside Secrets', () => {
    let withSecrets = 0;
    for (const r of each()) {
      const secrets = r.manifests.filter((m) => m.kind === 'Secret');
      const secretValues = secrets.flatMap((m) => Object.values(m.data ?? {}).map((v) => Buffer.from(v, 'base64').toString('utf8'))).filter((v) => v.length >= 8);
      // A generated Secret holds real values to look for.
      if (secrets.length > 0) {
        expect(secretValues.length, r.name).toBeGreaterThan(0);
        withSecrets++;
      }
      let secretEnv = 0;
      for (const m of r.manifests) {
        if (m.kind === 'Secret') continue;
        const text = JSON.stringify(m);
        for (const s of secretValues) expect(text.includes(s), `${r.name}: a secret value appears in ${m.kind}/${m.metadata.name}`).toBe(false);
        if (m.kind === 'ConfigMap') {
          for (const [k, v] of Object.entries(m.data ?? {})) {
            expect(v, `${r.name}: ConfigMap ${m.metadata.name} ${k}`).not.toMatch(/^\s*static-auth-secret\s*=|postgres(ql)?:\/\/[^\s@]*:[^\s@]*@|rediss?:\/\/[^\s@]*:[^\s@]+@/m);
          }
        }
      }
      for (const w of workloads(r)) {
        for (const c of allContainers(w.spec.template.spec)) {
          for (const e of c.env ?? []) {
            if (!SECRET_ENV.test(e.name)) continue;
            const id = `${r.name}: ${w.metadata.name} ${c.name} ${e.name}`;
            expect(e.value, id).toBeUndefined();
            expect(e.valueFrom?.secretKeyRef, id).toBeDefined();
            secretEnv++;
          }
        }
      }
      // JWT_SECRET and DATABASE_URL at least, in every set.
      expect(secretEnv, r.name).toBeGreaterThanOrEqual(2);
    }
    expect(withSecrets).toBeGreaterThan(0);
  });

  it('lets every draining pod finish: preStop + DRAIN_TIMEOUT_MS < terminationGracePeriodSeconds', () => {
    for (const r of each()) {
      for (const [suffix, key] of [
        ['-signaling', 'signaling'],
        ['-sfu', 'sfu'],
      ] as const) {
        const w = r.manifests.find((m) => (m.kind === 'Deployment' || m.kind === 'DaemonSet') && m.metadata.name.endsWith(suffix));
        const pod = w?.spec?.template?.spec as PodSpec;
        const c = pod.containers[0] as Container;
        const drainMs = Number(envOf(c, 'DRAIN_TIMEOUT_MS')?.value);
        expect(drainMs, `${r.name} ${key}`).toBe(Number(get(r.values, `${key}.drainTimeoutMs`)));
        const preStop = c.lifecycle?.preStop?.exec?.command;
        expect(preStop?.[0], `${r.name} ${key} preStop`).toBe('sleep');
        const sleep = Number(preStop?.[1]);
        expect(sleep, `${r.name} ${key}`).toBeGreaterThan(0);
        // The processes' own hard deadlines are drain + 2 s (signaling) and drain + 5 s (SFU).
        const hardDeadline = key === 'signaling' ? 2 : 5;
        expect(pod.terminationGracePeriodSeconds, `${r.name} ${key}`).toBeGreaterThan(sleep + drainMs / 1000 + hardDeadline);
      }
    }
  });

  it('generates coturn config like `blockrtc turn-config`, with the same denied peer ranges and no secret', () => {
    const file = readFileSync(join(CHART, 'files', 'denied-peer-ips.txt'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(file).toEqual(DENIED_PEER_RANGES);
    const withTurn: string[] = [];
    const withoutTurn: string[] = [];
    for (const r of each()) {
      const cm = find(r, 'ConfigMap', '-turn');
      if (get(r.values, 'turn.enabled') === false) {
        expect(cm, r.name).toBeUndefined();
        expect(find(r, 'DaemonSet', '-turn'), r.name).toBeUndefined();
        withoutTurn.push(r.name);
        continue;
      }
      withTurn.push(r.name);
      expect(cm, r.name).toBeDefined();
      const conf = cm?.data?.['turnserver.conf'] ?? '';
      const relay = get(r.values, 'turn.relayPorts') as { min: number; max: number };
      const cfg = loadConfig('turn', {
        TURN_SECRET: 'x'.repeat(24),
        TURN_PORT: String(get(r.values, 'turn.port')),
        TURN_RELAY_PORTS: `${relay.min}-${relay.max}`,
        TURN_REALM: String(get(r.values, 'turn.realm')),
        TURN_USER_QUOTA: String(get(r.values, 'turn.userQuota')),
        TURN_TOTAL_QUOTA: String(get(r.values, 'turn.totalQuota')),
      });
      const settings = (text: string) =>
        text
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !l.startsWith('#'));
      const chartOnly = /^(no-tls|no-dtls|simple-log)$|^(tls-listening-port|cert|pkey|log-file)=/;
      const extraDenied = ((get(r.values, 'turn.extraDeniedPeerIps') as string[] | undefined) ?? []).map((x) => `denied-peer-ip=${x}`);
      const fromChart = settings(conf).filter((l) => !chartOnly.test(l) && !extraDenied.includes(l));
      const fromCli = settings(coturnConfig(cfg.turn)).filter((l) => !l.startsWith('static-auth-secret=') && !l.startsWith('external-ip='));
      expect(fromChart, r.name).toEqual(fromCli);
      expect(conf).not.toMatch(/^\s*static-auth-secret\s*=/m);
      const ds = find(r, 'DaemonSet', '-turn');
      const pod = ds?.spec?.template?.spec as PodSpec;
      expect(pod.hostNetwork, r.name).toBe(true);
      const coturn = pod.containers[0] as Container;
      expect(envOf(coturn, 'TURN_SECRET')?.valueFrom?.secretKeyRef, r.name).toBeDefined();
      expect(coturn.args?.join('\n'), r.name).toContain('static-auth-secret=%s');
      // Signaling hands out credentials for the same secret.
      const sig = find(r, 'Deployment', '-signaling')?.spec?.template?.spec as PodSpec;
      expect(envOf(sig.containers[0] as Container, 'TURN_SECRET')?.valueFrom?.secretKeyRef).toEqual(envOf(coturn, 'TURN_SECRET')?.valueFrom?.secretKeyRef);
    }
    // Both branches ran: the comparison above was made, and the no-turn set renders no coturn.
    expect(withTurn).toEqual(expect.arrayContaining(['default', 'production']));
    expect(withoutTurn).toEqual(['no-turn']);
  });

  it('runs migrations as a hook Job (`blockrtc migrate`) that reads DATABASE_URL from a Secret', () => {
    for (const r of each()) {
      const job = find(r, 'Job', '-migrate');
      expect(job, r.name).toBeDefined();
      const hook = job?.metadata.annotations?.['helm.sh/hook'] ?? '';
      expect(hook, r.name).toContain('pre-upgrade');
      const bundled = get(r.values, 'bundled.postgresql.enabled') === true && !get(r.values, 'database.url') && !get(r.values, 'database.existingSecret');
      expect(hook, r.name).toContain(bundled ? 'post-install' : 'pre-install');
      const c = (job?.spec?.template?.spec as PodSpec).containers[0] as Container;
      expect(c.args, r.name).toEqual(['migrate']);
      // The chart's own Secret must exist before a pre-install hook runs.
      const secret = find(r, 'Secret', '-secrets');
      if (secret) expect(secret.metadata.annotations?.['helm.sh/hook'], r.name).toContain('pre-install');
      else expect(get(r.values, 'secrets.jwt.existingSecret'), `${r.name}: no generated Secret, so the JWT secret must be referenced`).toBeTruthy();
    }
    expect(find(rendered.get('default') as Rendered, 'Secret', '-secrets'), 'default renders its Secret').toBeDefined();
  });

  it('fronts signaling with an Ingress tuned for WebSockets, a PDB, anti-affinity and an HPA', () => {
    const def = rendered.get('default') as Rendered;
    const ing = find(def, 'Ingress', '') as Manifest;
    expect(ing.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-read-timeout']).toBe('3600');
    expect(ing.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-send-timeout']).toBe('3600');
    expect(find(def, 'PodDisruptionBudget', '-signaling')).toBeDefined();
    const dep = find(def, 'Deployment', '-signaling') as Manifest;
    expect(JSON.stringify(dep.spec?.template?.spec)).toContain('podAntiAffinity');

    const prod = rendered.get('production') as Rendered;
    const hpa = find(prod, 'HorizontalPodAutoscaler', '-signaling') as Manifest;
    const metrics = (hpa.spec as { metrics: { type: string; pods?: { metric: { name: string } } }[] }).metrics;
    expect(metrics.map((m) => m.type)).toEqual(['Resource', 'Pods']);
    expect(metrics[1]?.pods?.metric.name).toBe('blockrtc_ws_connections');
    expect(find(def, 'HorizontalPodAutoscaler', '-signaling')?.spec).not.toHaveProperty('metrics.1');
    // Production values: external services only, secrets referenced, not generated.
    expect(prod.manifests.filter((m) => m.kind === 'StatefulSet')).toEqual([]);
    expect(find(prod, 'Secret', '-secrets')).toBeUndefined();
    const env = (find(prod, 'Deployment', '-signaling')?.spec?.template?.spec as PodSpec).containers[0] as Container;
    expect(envOf(env, 'REDIS_CLUSTER_NODES')?.value).toContain(':6379');
    expect(envOf(env, 'DATABASE_URL')?.valueFrom?.secretKeyRef?.name).toBe('blockrtc-database');
    // The dashboard covers the metrics operators watch.
    const dash = find(prod, 'ConfigMap', '-dashboard')?.data?.['blockrtc.json'] ?? '';
    for (const metric of [
      'blockrtc_ws_connections',
      'blockrtc_chat_messages_in_total',
      'blockrtc_chat_delivery_seconds',
      'blockrtc_auth_failures_total',
      'blockrtc_rate_limited_total',
      'blockrtc_sfu_consumers',
      'blockrtc_sfu_worker_cpu',
    ]) {
      expect(dash, metric).toContain(metric);
    }
    expect(() => JSON.parse(dash)).not.toThrow();
  });

  it('serves /metrics on METRICS_PORT: a container port and Service port of its own that the Ingress never routes to', () => {
    for (const r of each()) {
      for (const [kind, suffix, values] of [
        ['Deployment', '-signaling', 'signaling'],
        ['DaemonSet', '-sfu', 'sfu'],
      ] as const) {
        const w = find(r, kind, suffix);
        if (!w) continue;
        const c = (w.spec?.template?.spec as PodSpec).containers[0] as Container;
        const metricsPort = Number(get(r.values, `${values}.metricsPort`));
        const id = `${r.name}: ${kind}${suffix}`;
        expect(envOf(c, 'METRICS_PORT')?.value, id).toBe(String(metricsPort));
        expect(c.ports?.find((p) => p.name === 'metrics')?.containerPort, id).toBe(metricsPort);
        expect(envOf(c, 'PORT')?.value, id).not.toBe(String(metricsPort));
        expect(w.spec?.template && (w.spec.template as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations?.['prometheus.io/port'], id).toBe(String(metricsPort));
        const svc = find(r, 'Service', suffix);
        const ports = (svc?.spec as { ports: { name: string; targetPort: string }[] }).ports;
        expect(ports.find((p) => p.name === 'metrics')?.targetPort, id).toBe('metrics');
      }
      const ing = find(r, 'Ingress', '');
      if (ing) expect(JSON.stringify(ing.spec), r.name).not.toContain('metrics');
      for (const m of r.manifests.filter((x) => x.kind === 'ServiceMonitor')) {
        expect((m.spec as { endpoints: { port: string }[] }).endpoints.map((e) => e.port), r.name).toEqual(['metrics']);
      }
    }
  });

  it('keeps NET_BIND_SERVICE for coturn, serves turns: on 443 from a TLS Secret and reloads it when renewed', () => {
    for (const r of each()) {
      const ds = find(r, 'DaemonSet', '-turn');
      if (!ds) continue;
      const pod = ds.spec?.template?.spec as PodSpec;
      const coturn = pod.containers[0] as Container;
      // The image's turnserver carries the capability as a file capability: it must stay in
      // the bounding set (or exec fails) and nothing else may be added.
      expect(coturn.securityContext?.capabilities?.drop, r.name).toContain('ALL');
      expect(coturn.securityContext?.capabilities?.add, r.name).toEqual(['NET_BIND_SERVICE']);
      expect(coturn.securityContext?.allowPrivilegeEscalation, r.name).toBe(true);
      // Every other container still drops every capability.
      for (const w of workloads(r)) {
        for (const c of allContainers(w.spec.template.spec)) {
          if (c === coturn || c.name === 'coturn') continue;
          expect(c.securityContext?.capabilities?.add ?? [], `${r.name}: ${w.metadata.name} ${c.name}`).toEqual([]);
        }
      }
      if (get(r.values, 'turn.tls.enabled') !== true) {
        expect(coturn.args?.join('\n'), r.name).not.toContain('USR2');
        continue;
      }
      const port = Number(get(r.values, 'turn.tls.port'));
      expect(port, r.name).toBe(443);
      expect(coturn.ports?.filter((p) => p.containerPort === port && p.hostPort === port).map((p) => p.protocol).sort(), r.name).toEqual(['TCP', 'UDP']);
      const conf = find(r, 'ConfigMap', '-turn')?.data?.['turnserver.conf'] ?? '';
      expect(conf, r.name).toContain(`tls-listening-port=${port}`);
      expect(conf, r.name).toContain('cert=/etc/coturn/tls/tls.crt');
      expect(pod.volumes?.find((v) => v.name === 'tls')?.secret?.secretName, r.name).toBe(get(r.values, 'turn.tls.secretName'));
      // A renewed Secret: the files change in place and coturn is told to re-read them.
      const script = coturn.args?.join('\n') ?? '';
      expect(script, r.name).toMatch(/cksum/);
      expect(script, r.name).toMatch(/kill -USR2 "\$main"/);
      expect(script.indexOf('kill -USR2'), r.name).toBeLessThan(script.indexOf('exec turnserver'));
      const sig = (find(r, 'Deployment', '-signaling')?.spec?.template?.spec as PodSpec).containers[0] as Container;
      expect(envOf(sig, 'TURN_URLS')?.value, r.name).toMatch(/turns:[^,]+:443\?transport=tcp/);
    }
  });

  it('passes REDIS_PASSWORD from a Secret and REDIS_TLS to every Redis Cluster client', () => {
    const prod = rendered.get('production') as Rendered;
    for (const suffix of ['-signaling', '-sfu']) {
      const w = prod.manifests.find((m) => (m.kind === 'Deployment' || m.kind === 'DaemonSet') && m.metadata.name.endsWith(suffix)) as Manifest;
      const c = (w.spec?.template?.spec as PodSpec).containers.find((x) => blockrtcMode(x)) as Container;
      expect(envOf(c, 'REDIS_PASSWORD')?.valueFrom?.secretKeyRef, suffix).toEqual({ name: 'blockrtc-redis', key: 'REDIS_PASSWORD' });
      expect(envOf(c, 'REDIS_PASSWORD')?.value, suffix).toBeUndefined();
      expect(envOf(c, 'REDIS_TLS')?.value, suffix).toBe('true');
      const cfg = loadConfig(blockrtcMode(c) as Mode, { ...containerEnv(c), SFU_ANNOUNCED_ADDRESS: '198.51.100.8' });
      expect(cfg.redis.tls, suffix).toBe(true);
      expect(cfg.redis.password, suffix).toBeTruthy();
    }
    const def = rendered.get('default') as Rendered;
    const sig = (find(def, 'Deployment', '-signaling')?.spec?.template?.spec as PodSpec).containers[0] as Container;
    expect(envOf(sig, 'REDIS_PASSWORD')).toBeUndefined();
    const single = run(['template', 'blockrtc', CHART, '--set', 'redis.tls=true']);
    expect(single.status).not.toBe(0);
    expect(single.stderr).toContain('redis.password / redis.tls apply to redis.clusterNodes');
  });

  it('rolls signaling out without stalling: no surge pod under hard anti-affinity, or the strategy given', () => {
    type Strategy = { type: string; rollingUpdate?: { maxSurge: number | string; maxUnavailable: number | string } };
    const strategy = (r: Rendered) => (find(r, 'Deployment', '-signaling')?.spec as { strategy: Strategy }).strategy;
    for (const r of each()) {
      const s = strategy(r);
      if (get(r.values, 'signaling.antiAffinity') === 'hard') expect(s.rollingUpdate?.maxSurge, r.name).toBe(0);
      else expect(s.rollingUpdate, r.name).toEqual({ maxSurge: '25%', maxUnavailable: 0 });
      expect(s.rollingUpdate?.maxUnavailable, r.name).not.toBe('100%');
    }
    const out = mustRun(['template', 'blockrtc', CHART, '--set', 'signaling.updateStrategy.type=RollingUpdate', '--set', 'signaling.updateStrategy.rollingUpdate.maxSurge=1', '--set', 'signaling.updateStrategy.rollingUpdate.maxUnavailable=1']);
    expect(out).toMatch(/strategy:\n\s+rollingUpdate:\n\s+maxSurge: 1\n\s+maxUnavailable: 1\n\s+type: RollingUpdate/);
  });

  it('tells signaling how many proxy hops to trust instead of trusting the leftmost X-Forwarded-For', () => {
    for (const r of each()) {
      const c = (find(r, 'Deployment', '-signaling')?.spec?.template?.spec as PodSpec).containers[0] as Container;
      expect(envOf(c, 'TRUST_PROXY'), r.name).toBeUndefined();
      expect(envOf(c, 'TRUST_PROXY_HOPS')?.value, r.name).toBe(String(get(r.values, 'signaling.trustProxyHops')));
      expect(loadConfig('signaling', containerEnv(c)).http.trustProxy.hops, r.name).toBe(get(r.values, 'signaling.trustProxyHops'));
    }
    expect((rendered.get('default') as Rendered).values.signaling).toMatchObject({ trustProxyHops: 1 });
  });

  it('rejects bad values at install time with a clear message', () => {
    const bad = run(['template', 'blockrtc', CHART, '--set', 'sfu.workers=many']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('/sfu/workers');
    expect(bad.stderr).toMatch(/got string, want integer/);

    const typo = run(['template', 'blockrtc', CHART, '--set', 'sfu.wrokers=4']);
    expect(typo.status).not.toBe(0);
    expect(typo.stderr).toMatch(/wrokers/);

    const range = run(['template', 'blockrtc', CHART, '--set', 'sfu.portBase=80']);
    expect(range.status).not.toBe(0);
    expect(range.stderr).toContain('/sfu/portBase');

    const noDb = run(['template', 'blockrtc', CHART, '--set', 'bundled.postgresql.enabled=false']);
    expect(noDb.status).not.toBe(0);
    expect(noDb.stderr).toContain('PostgreSQL: set database.url or database.existingSecret');

    const overlap = run(['template', 'blockrtc', CHART, '--set', 'sfu.portBase=49200']);
    expect(overlap.status).not.toBe(0);
    expect(overlap.stderr).toContain('turn.relayPorts overlap the SFU ports');
  });
});
