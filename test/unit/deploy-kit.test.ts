/**
 * @module The deployment kit under deploy/ is valid as its tools read it, and agrees with the server.
 *
 * - Kubernetes manifests: each object validates against the Kubernetes schemas (kubernetes-models),
 *   and has no key the API does not know. Schema validation alone lets unknown keys through (the
 *   schemas allow additional properties), so each object is also type-checked as a TypeScript
 *   object literal of its kind, where an unknown key is an excess-property error.
 * - systemd units: `systemd-analyze verify` prints nothing (it exits 0 on unknown keys, so its
 *   output is what counts) and `systemd-analyze security --offline=true` rates them OK.
 * - Every W2N_* variable the kit sets (Dockerfile, compose, manifests, units) is a setting the
 *   server accepts with that value; timeouts leave the graceful stop room to finish.
 */

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

import { loadConfig } from '../../src/config/load.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const deploy = join(root, 'deploy');
const k8s = join(deploy, 'k8s');

interface K8sObject { apiVersion: string; kind: string; metadata?: { name?: string }; [key: string]: unknown }

function yamlDocuments(path: string): unknown[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((doc) => {
    assert.deepEqual(doc.errors, [], `${path}: YAML errors`);
    return doc.toJSON() as unknown;
  });
}

function manifests(): { file: string; object: K8sObject }[] {
  return readdirSync(k8s)
    .filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml')
    .flatMap((name) => yamlDocuments(join(k8s, name)).map((object) => ({ file: name, object: object as K8sObject })));
}

/** `kubernetes-models/apps/v1/Deployment` for apps/v1 Deployment; core v1 kinds live under `v1/`. */
function modelPath(object: K8sObject): string {
  return `kubernetes-models/${object.apiVersion}/${object.kind}`;
}

test('every Kubernetes manifest validates against the Kubernetes schemas', async () => {
  const found = manifests();
  assert.ok(found.length >= 6, 'deploy/k8s has the Deployment, Service, PVC, PDB, HPA and Redis objects');
  for (const { file, object } of found) {
    const module = (await import(modelPath(object))) as Record<string, new (data: unknown) => { validate(): void }>;
    const Model = module[object.kind];
    assert.ok(Model, `${file}: no model for ${object.apiVersion} ${object.kind}`);
    assert.doesNotThrow(() => new Model(object).validate(), `${file}: ${object.kind} ${object.metadata?.name ?? ''}`);
  }
});

/** TypeScript's excess-property check, run on one virtual file that types each manifest by its kind. */
function unknownKeyErrors(objects: { file: string; object: K8sObject }[]): string[] {
  const virtualName = join(root, '__deploy_manifests__.ts');
  const lines = objects.flatMap(({ object }, index) => [
    `import type { I${object.kind} as T${index} } from '${modelPath(object)}';`,
    `export const m${index}: T${index} = ${JSON.stringify(object)};`,
  ]);
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true, noEmit: true, skipLibCheck: true, module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, version, ...rest) => (name === virtualName
    ? ts.createSourceFile(name, source, version)
    : getSourceFile.call(host, name, version, ...rest));
  host.fileExists = (name) => name === virtualName || fileExists.call(host, name);
  host.readFile = (name) => (name === virtualName ? source : readFile.call(host, name));
  const program = ts.createProgram([virtualName], options, host);
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const text = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const line = diagnostic.file && diagnostic.start !== undefined
      ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line : -1;
    const culprit = line < 0 ? null : objects[Math.floor(line / 2)] ?? null; // two lines per object
    return `${culprit === null ? '' : `${culprit.file}: `}${text}`;
  });
}

test('no Kubernetes manifest has a key the API does not know', () => {
  const objects = manifests();
  assert.deepEqual(unknownKeyErrors(objects), []);
  // The check can fail: a misspelt field in a copy of the Deployment is caught.
  const deployment = objects.find(({ object }) => object.kind === 'Deployment');
  assert.ok(deployment);
  const broken = structuredClone(deployment.object) as K8sObject & { spec: { template: { spec: Record<string, unknown> } } };
  broken.spec.template.spec.terminationGracePeriod = 40;
  const errors = unknownKeyErrors([{ file: 'broken.yaml', object: broken }]);
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0] ?? '', /terminationGracePeriod/);
});

test('kustomization.yaml names every manifest but the optional Redis', () => {
  const [kustomization] = yamlDocuments(join(k8s, 'kustomization.yaml')) as { resources: string[] }[];
  const files = readdirSync(k8s).filter((name) => name.endsWith('.yaml') && !['kustomization.yaml', 'redis.yaml'].includes(name));
  assert.deepEqual([...(kustomization?.resources ?? [])].sort(), files.sort());
});

test('the pod has time to drain: grace period > preStop sleep + graceful timeout; probes on /health', () => {
  const deployment = manifests().find(({ object }) => object.kind === 'Deployment' && object.metadata?.name === 'web2py-on-node');
  assert.ok(deployment);
  const pod = (deployment.object as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
  const container = pod.containers[0];
  assert.ok(container);
  const graceful = Number(container.env.find((variable) => variable.name === 'W2N_GRACEFUL_TIMEOUT')?.value);
  const preStop = Number(/setTimeout\(\(\)=>\{\},(\d+)\)/.exec(container.lifecycle.preStop.exec.command.join(' '))?.[1]) / 1000;
  assert.ok(pod.terminationGracePeriodSeconds > preStop + graceful, `${pod.terminationGracePeriodSeconds} > ${preStop} + ${graceful}`);
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
    assert.equal(container[probe].httpGet.path, '/health', probe);
  }
  assert.equal(container.securityContext.readOnlyRootFilesystem, true);
  assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
  assert.equal(pod.securityContext.runAsNonRoot, true);
});

interface PodSpec {
  terminationGracePeriodSeconds: number;
  securityContext: { runAsNonRoot: boolean };
  containers: {
    env: { name: string; value: string }[];
    lifecycle: { preStop: { exec: { command: string[] } } };
    startupProbe: { httpGet: { path: string } }; readinessProbe: { httpGet: { path: string } }; livenessProbe: { httpGet: { path: string } };
    securityContext: { readOnlyRootFilesystem: boolean; capabilities: { drop: string[] } };
  }[];
}

/** Every `W2N_NAME=value` the kit sets, wherever it is written. */
function kitSettings(): { where: string; name: string; value: string }[] {
  const found: { where: string; name: string; value: string }[] = [];
  const dockerfile = readFileSync(join(deploy, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  for (const match of dockerfile.matchAll(/\b(W2N_\w+)=(\S+)/g)) found.push({ where: 'Dockerfile', name: match[1]!, value: match[2]! });
  const unit = readFileSync(join(deploy, 'systemd', 'web2py-on-node.service'), 'utf8');
  for (const match of unit.matchAll(/\b(W2N_\w+)=(\S+)/g)) found.push({ where: 'web2py-on-node.service', name: match[1]!, value: match[2]! });
  for (const { file, object } of manifests()) {
    const text = JSON.stringify(object);
    for (const match of text.matchAll(/\{"name":"(W2N_\w+)","value":"([^"]*)"\}/g)) found.push({ where: file, name: match[1]!, value: match[2]! });
  }
  const compose = yamlDocuments(join(deploy, 'compose.yaml'))[0] as { services: Record<string, { environment?: Record<string, string> }> };
  for (const [name, service] of Object.entries(compose.services)) {
    for (const [key, value] of Object.entries(service.environment ?? {})) found.push({ where: `compose.yaml ${name}`, name: key, value: String(value) });
  }
  return found;
}

test('every W2N_* variable in the kit is a setting the server accepts with that value', () => {
  const found = kitSettings();
  assert.ok(found.some(({ name }) => name === 'W2N_GRACEFUL_TIMEOUT'), 'the kit sets the graceful timeout');
  for (const { where, name, value } of found) {
    // Paths of the target machine need not exist here: the folder is checked with this one.
    const env = { [name]: name === 'W2N_FOLDER' ? root : value };
    const loaded = loadConfig({ argv: [], env, cwd: root });
    assert.deepEqual(loaded.warnings, [], `${where}: ${name}`);
  }
});

test('the Dockerfile: non-root fixed UID, tini in exec form, SIGTERM, a curl-less health check, a stop inside 10 s', () => {
  const dockerfile = readFileSync(join(deploy, 'Dockerfile'), 'utf8');
  const instructions = dockerfile.replace(/\\\n/g, ' ').split('\n').filter((line) => /^[A-Z]+\s/.test(line));
  const last = (name: string): string => instructions.filter((line) => line.startsWith(`${name} `)).at(-1) ?? '';
  assert.match(last('USER'), /^USER 10001:10001$/);
  assert.equal(last('STOPSIGNAL'), 'STOPSIGNAL SIGTERM');
  assert.match(last('ENTRYPOINT'), /^ENTRYPOINT \["\/usr\/bin\/tini", "--", /);
  const healthcheck = last('HEALTHCHECK');
  assert.match(healthcheck, /CMD \[.*\/health/);
  assert.doesNotMatch(healthcheck, /curl|wget/);
  assert.equal(instructions.filter((line) => line.startsWith('FROM ')).length, 2, 'multi-stage');
  const graceful = Number(/W2N_GRACEFUL_TIMEOUT=(\d+)/.exec(dockerfile)?.[1]);
  assert.ok(graceful < 10, 'the graceful stop ends before Docker\'s default 10 s SIGKILL');
  const compose = yamlDocuments(join(deploy, 'compose.yaml'))[0] as { services: { web: { stop_grace_period: string } } };
  assert.ok(Number.parseInt(compose.services.web.stop_grace_period, 10) > graceful);
  // Every path the build copies is let through .dockerignore.
  const ignore = readFileSync(join(root, '.dockerignore'), 'utf8');
  for (const match of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
    for (const path of match[1]!.split(' ')) assert.match(ignore, new RegExp(`^!${path.replace('.', '\\.')}/?$`, 'm'), path);
  }
});

const systemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

test('the systemd units verify cleanly and rate OK in systemd-analyze security', { skip: systemdAnalyze ? false : 'systemd-analyze is not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'w2n-units-'));
  try {
    cpSync(join(deploy, 'systemd', 'web2py-on-node.service'), join(dir, 'web2py-on-node.service'));
    // A template is verified as an instance.
    cpSync(join(deploy, 'systemd', 'web2py-scheduler@.service'), join(dir, 'web2py-scheduler@welcome.service'));
    for (const unit of ['web2py-on-node.service', 'web2py-scheduler@welcome.service']) {
      const verify = spawnSync('systemd-analyze', ['verify', join(dir, unit)], { encoding: 'utf8' });
      assert.equal(verify.status, 0, verify.stderr);
      assert.equal(`${verify.stdout}${verify.stderr}`.trim(), '', `${unit}: systemd-analyze verify warned`);
      const security = execFileSync('systemd-analyze', ['security', '--offline=true', join(dir, unit)], { encoding: 'utf8' });
      const exposure = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(security)?.[1]);
      assert.ok(exposure <= 2, `${unit}: exposure ${exposure}`);
    }
    // The check can fail: an unknown key is reported.
    const broken = resolve(dir, 'broken.service');
    cpSync(join(deploy, 'systemd', 'web2py-on-node.service'), broken);
    execFileSync('sh', ['-c', `printf 'KilMode=mixed\\n' >> ${broken}`]);
    const verify = spawnSync('systemd-analyze', ['verify', broken], { encoding: 'utf8' });
    assert.match(verify.stderr, /Unknown key 'KilMode'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
