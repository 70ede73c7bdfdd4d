// Lint: type-aware rules a server needs (no floating or misused promises), and the module
// boundaries of shared/STYLE.md enforced, not just reviewed.
import tseslint from 'typescript-eslint';

const restrict = (paths, patterns = []) => ['error', { paths, patterns }];
const nodeHttp = ['node:http', 'node:https', 'node:http2', 'node:net', 'node:tls'].map((name) => ({
  name, message: 'this layer does no network I/O (see STYLE.md, module boundaries)',
}));

// Every server-log line goes through the catalogue (src/observability/events.ts): no `event:` of
// one's own, no logger.info/warn/error/... calls with free text outside it.
const logThroughCatalogue = [
  {
    selector: 'ObjectExpression > Property[key.name="event"]',
    message: 'log events are declared in the catalogue (src/observability/events*.ts): call LogEvents.<event>(log, fields)',
  },
  {
    selector: 'CallExpression[callee.type="MemberExpression"][callee.property.name=/^(trace|debug|info|warn|error|fatal)$/]',
    message: 'log through the catalogue (LogEvents in src/observability/events.ts), not with a message of your own',
  },
  {
    selector: 'CallExpression[callee.type="MemberExpression"][callee.computed=true][callee.object.name=/^(log|logger)$/]',
    message: 'log through the catalogue (LogEvents in src/observability/events.ts), not with a message of your own',
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/**', 'eslint.config.js'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after'] }],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-param-reassign': 'error',
      'no-restricted-properties': ['error',
        { object: 'process', property: 'exit', message: 'only src/cli/main.ts exits the process' },
        { object: 'process', property: 'argv', message: 'only src/cli/main.ts reads argv (config/load.ts takes it as a parameter)' }],
      'no-restricted-imports': restrict([{ name: 'node:child_process', message: 'only src/pool/worker.ts, src/primary/front-process.ts and src/primary/scheduler-process.ts spawn processes' }]),
    },
  },
  {
    // A function longer than a screen does several jobs: the 170-line start/stop function that
    // src/lifecycle/ replaced was one. The longest now (Http2Sessions.track) is under 100.
    files: ['src/**/*.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 100, skipBlankLines: true, skipComments: true }] },
  },
  // The two entries: the primary's (cli/main.ts) and a front process's (cli/front.ts).
  { files: ['src/cli/main.ts', 'src/cli/front.ts'], rules: { 'no-restricted-properties': 'off' } },
  { files: ['src/pool/worker.ts'], rules: { 'no-restricted-imports': 'off' } },
  {
    files: ['src/protocol/**/*.ts'],
    rules: { 'no-restricted-imports': restrict([...nodeHttp, { name: 'node:child_process', message: 'pure codec' }, { name: 'node:fs', message: 'pure codec' }],
      ['../config/*', '../pool/*', '../front/*', '../observability/*', '../web2py/*', '../server.js']) },
  },
  {
    files: ['src/config/**/*.ts'],
    // Address parsing from node:net (no I/O) validates --trusted-proxies.
    rules: { 'no-restricted-imports': restrict([
      ...nodeHttp.filter(({ name }) => name !== 'node:net'),
      { name: 'node:net', allowImportNames: ['BlockList', 'isIP', 'SocketAddress'], message: 'config only parses addresses' },
      { name: 'node:child_process', message: 'config only validates' }],
      ['../pool/*', '../front/*', '../observability/*', '../protocol/*', '../web2py/*', '../server.js']) },
  },
  {
    // The lifecycle only orders steps: what it stops registers them, so it knows no component.
    files: ['src/lifecycle/**/*.ts'],
    rules: { 'no-restricted-imports': restrict([...nodeHttp, { name: 'node:child_process', message: 'the lifecycle only orders steps' }, { name: 'node:fs', message: 'the lifecycle only orders steps' }],
      ['../config/*', '../pool/*', '../front/*', '../primary/*', '../observability/*', '../protocol/*', '../web2py/*', '../cli/*', '../errors/*', '../server.js']) },
  },
  {
    files: ['src/pool/**/*.ts'],
    ignores: ['src/pool/worker.ts'],
    rules: { 'no-restricted-imports': restrict([...nodeHttp, { name: 'node:child_process', message: 'only worker.ts spawns processes' }], ['../front/*', '../server.js']) },
  },
  {
    files: ['src/pool/worker.ts'],
    rules: { 'no-restricted-imports': restrict(nodeHttp, ['../front/*', '../server.js']) },
  },
  {
    // The worker's pipe (a socketpair, no network) re-wrapped to read into buffers of its own.
    files: ['src/pool/channel-reads.ts'],
    rules: { 'no-restricted-imports': restrict([
      ...nodeHttp.filter(({ name }) => name !== 'node:net'),
      { name: 'node:net', allowImportNames: ['Socket', 'OnReadOpts', 'SocketConstructorOpts'], message: 'channel-reads only wraps the worker\'s pipe in a Socket' },
      { name: 'node:child_process', message: 'only worker.ts spawns processes' },
    ], ['../front/*', '../server.js']) },
  },
  {
    files: ['src/front/**/*.ts'],
    rules: { 'no-restricted-imports': restrict([{ name: 'node:child_process', message: 'the front never touches processes' }],
      ['**/pool/worker.js', '**/pool/supervisor.js', '**/pool/channel.js', '**/pool/dispatcher.js']) },
  },
  {
    // The primary reads no client bytes: no HTTP or TLS servers, nothing of the front's request path.
    files: ['src/primary/**/*.ts'],
    rules: { 'no-restricted-imports': restrict([
      ...nodeHttp.filter(({ name }) => name !== 'node:net'),
      { name: 'node:net', importNames: ['Server', 'createServer', 'Socket', 'connect', 'createConnection'], message: 'the primary binds (bound-sockets.ts); it never accepts' },
      { name: 'node:child_process', message: 'only src/primary/front-process.ts (the fronts) and scheduler-process.ts (web2py\'s scheduler) spawn' },
    ], [{ group: ['../front/*', '!../front/listen-plan.js', '!../front/tls-files.js', '!../front/unix-socket.js', '!../front/body-spool.js', '!../front/realtime', '../front/realtime/*', '!../front/realtime/events.js', '../server.js'], allowTypeImports: true,
      message: 'the primary reads no client bytes: it may use the front\'s address planning, TLS files, socket files and realtime event checks only' }]) },
  },
  {
    files: ['src/primary/front-process.ts', 'src/primary/scheduler-process.ts'],
    rules: { 'no-restricted-imports': restrict(nodeHttp) },
  },
  { files: ['src/**/*.ts'], rules: { 'no-restricted-syntax': ['error', ...logThroughCatalogue] } },
  // The catalogue itself, and the logger (which defines the level methods).
  { files: ['src/observability/events*.ts', 'src/observability/event-spec.ts', 'src/observability/log.ts'], rules: { 'no-restricted-syntax': 'off' } },
  {
    // The request path narrows types with runtime checks ('stream' in req, instanceof): a cast
    // through unknown hid the crash of `GET / HTTP/2.0` (an HTTP/1 request has no .stream).
    files: ['src/front/**/*.ts', 'src/pool/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', ...logThroughCatalogue, {
        selector: 'TSAsExpression[typeAnnotation.type="TSUnknownKeyword"]',
        message: 'no `as unknown as` in the request path: narrow with a runtime check (in, instanceof, typeof) instead',
      }],
    },
  },
  {
    files: ['test/**/*.ts', 'scripts/**/*.ts', 'fuzz/**/*.ts'],
    rules: { 'no-restricted-imports': 'off', 'no-restricted-properties': 'off' },
  },
  {
    // No bare sleeps in the end-to-end tests: await a signal, poll with waitUntil/pollPause, or
    // name a fixed wait with deliberateWait(ms, why) (test/helpers/waits.ts), so grep lists them all.
    files: ['test/e2e/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', ...[
        'CallExpression[callee.name="setTimeout"][arguments.0.type="Identifier"]',
        'CallExpression[callee.name="setTimeout"][arguments.0.type="ArrowFunctionExpression"][arguments.0.body.type="CallExpression"][arguments.0.body.callee.type="Identifier"][arguments.0.body.arguments.length=0]',
        'ImportDeclaration[source.value=/timers\\/promises$/]',
      ].map((selector) => ({ selector, message: 'no bare sleep in test/e2e: await a signal, or use waitUntil/pollPause/deliberateWait (test/helpers/waits.ts)' }))],
    },
  },
);
