// The status page: polls /status.json every second and redraws. Everything that came from a
// client (paths, event details) is written with textContent, never as HTML.
/* global uPlot */
(function () {
  'use strict';

  const POLL_MS = 1000;
  const token = new URLSearchParams(location.search).get('token');
  const headers = token === null ? {} : { Authorization: 'Bearer ' + token };
  const charts = {};

  function text(element, value) {
    element.textContent = value === null || value === undefined ? '–' : String(value);
    return element;
  }

  function make(tag, value, className) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (value !== undefined) text(element, value);
    return element;
  }

  function seconds(s) {
    if (s === null || s === undefined) return '–';
    if (s < 90) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    if (s < 5400) return (s / 60).toFixed(0) + ' min';
    if (s < 172800) return (s / 3600).toFixed(1) + ' h';
    return (s / 86400).toFixed(1) + ' d';
  }

  function bytes(n) {
    if (n === null || n === undefined) return '–';
    if (n < 1024 * 1024) return (n / 1024).toFixed(0) + ' kB';
    if (n < 1024 * 1024 * 1024) return (n / 1048576).toFixed(1) + ' MB';
    return (n / 1073741824).toFixed(2) + ' GB';
  }

  function fillRows(id, rows, cells) {
    const body = document.querySelector('#' + id + ' tbody');
    const fresh = document.createElement('tbody');
    for (const row of rows) {
      const tr = document.createElement('tr');
      for (const cell of cells(row)) tr.appendChild(cell);
      fresh.appendChild(tr);
    }
    body.replaceWith(fresh);
  }

  function renderFacts(server) {
    text(document.getElementById('version'), server.version);
    const facts = document.getElementById('facts');
    facts.replaceChildren();
    const add = (name, value) => {
      const pair = document.createElement('div');
      pair.appendChild(make('dt', name));
      pair.appendChild(make('dd', value));
      facts.appendChild(pair);
    };
    add('uptime', seconds(server.uptimeSeconds));
    add('listening', server.listeners.join(', '));
    add('workers', server.workerClass);
    add('fronts', server.fronts);
    add('reloads', server.reloads);
    for (const [name, value] of Object.entries(server.config)) add(name, value);
  }

  function renderGauges(now) {
    const gauges = document.getElementById('gauges');
    gauges.replaceChildren();
    const gauge = (name, value, limit) => {
      const box = make('div', undefined, 'gauge');
      box.dataset.gauge = name;
      box.appendChild(make('div', name, 'label'));
      box.appendChild(make('div', limit === null ? String(value) : value + ' / ' + limit, 'value'));
      if (limit !== null && limit > 0) {
        const bar = make('div', undefined, 'bar');
        const fill = document.createElement('div');
        const share = Math.min(1, value / limit);
        fill.style.width = (share * 100).toFixed(1) + '%';
        if (share > 0.8) box.classList.add('high');
        bar.appendChild(fill);
        box.appendChild(bar);
      }
      gauges.appendChild(box);
    };
    gauge('in the application', now.inApp, now.inAppLimit);
    gauge('queue', now.queued, now.queueSize);
    gauge('connections', now.connections, now.maxConnections);
    if (now.websockets !== null && now.websockets !== undefined) gauge('WebSocket connections', now.websockets, now.maxWebsockets ?? null);
    if (now.appWebSockets) gauge('application WebSockets', now.appWebSockets, now.inAppLimit);
  }

  const series = {
    rate: {
      series: [{}, { label: '2xx', stroke: '#2f6fb0' }, { label: '3xx', stroke: '#6a9f3a' }, { label: '4xx', stroke: '#c78a00' }, { label: '5xx', stroke: '#b3261e' }],
      columns: (h) => [h.map((p) => p.responses[1]), h.map((p) => p.responses[2]), h.map((p) => p.responses[3]), h.map((p) => p.responses[4])],
    },
    latency: {
      series: [{}, { label: 'p50', stroke: '#2f6fb0' }, { label: 'p99', stroke: '#b3261e' }, { label: 'wait p50', stroke: '#6a9f3a', dash: [4, 4] }, { label: 'wait p99', stroke: '#c78a00', dash: [4, 4] }],
      columns: (h) => [h.map((p) => p.p50Ms), h.map((p) => p.p99Ms), h.map((p) => p.queueWaitP50Ms), h.map((p) => p.queueWaitP99Ms)],
    },
    errors: {
      series: [{}, { label: '503 full', stroke: '#b3261e' }, { label: '503 timeout', stroke: '#c78a00' }, { label: '503 standing', stroke: '#7a4fb0' }, { label: '504', stroke: '#1d2733' }],
      columns: (h) => [h.map((p) => p.rejected.full), h.map((p) => p.rejected.timeout), h.map((p) => p.rejected.standing), h.map((p) => p.timeouts)],
    },
    front: {
      series: [{}, { label: 'CPU cores', stroke: '#2f6fb0', scale: 'cores' }, { label: 'loop delay p99 ms', stroke: '#b3261e', scale: 'ms' }],
      columns: (h) => [h.map((p) => p.cpuCores), h.map((p) => p.loopDelayP99Ms)],
      axes: [{}, { scale: 'cores' }, { scale: 'ms', side: 1, grid: { show: false } }],
    },
  };

  function renderCharts(history) {
    const times = history.map((p) => p.t);
    for (const [name, spec] of Object.entries(series)) {
      const data = [times, ...spec.columns(history)];
      const holder = document.querySelector('[data-chart="' + name + '"]');
      if (charts[name] === undefined) {
        const options = { width: Math.max(300, holder.clientWidth || 480), height: 180, series: spec.series, legend: { live: false } };
        if (spec.axes) options.axes = spec.axes;
        charts[name] = new uPlot(options, data, holder);
      } else {
        charts[name].setData(data);
      }
      // The number of points drawn: what the browser test reads to see the charts move.
      holder.dataset.points = String(times.length);
      holder.dataset.last = String(data[1][data[1].length - 1] ?? '');
    }
  }

  function render(status) {
    renderFacts(status.server);
    renderGauges(status.now);
    renderCharts(status.history);
    fillRows('workers', status.workers, (w) => [
      make('td', w.front), make('td', w.pid), make('td', w.state), make('td', w.inFlight), make('td', w.served),
      make('td', w.maxRssBytes ? bytes(w.rssBytes) + ' / ' + bytes(w.maxRssBytes) : bytes(w.rssBytes)),
      make('td', seconds(w.ageSeconds)), make('td', w.restarts), make('td', w.lastExit),
    ]);
    const schedulers = status.schedulers || [];
    document.getElementById('schedulers-section').hidden = schedulers.length === 0;
    fillRows('schedulers', schedulers, (s) => [
      make('td', s.name), make('td', s.pid), make('td', seconds(s.uptimeSeconds)), make('td', s.restarts),
      // The age of the last heartbeat it recorded in scheduler_worker, and the status it recorded.
      make('td', s.pid === null ? '–' : s.heartbeatAgeSeconds == null ? 'none yet' : seconds(s.heartbeatAgeSeconds) + ' ago (' + s.heartbeatStatus + ')'),
      make('td', s.gaveUp ? 'given up' : (s.pid === null ? 'restarting' : 'running')),
    ]);
    fillRows('inflight', status.inflight, (r) => [make('td', seconds(r.seconds)), make('td', r.method), make('td', r.path, 'path'), make('td', r.front)]);
    fillRows('events', status.events.slice().reverse(), (e) => [make('td', new Date(e.time).toLocaleTimeString()), make('td', e.name), make('td', e.detail, 'path')]);
  }

  const state = document.getElementById('state');
  async function poll() {
    try {
      const response = await fetch('/status.json', { headers, cache: 'no-store' });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      render(await response.json());
      state.classList.remove('stale');
      text(state, 'updated ' + new Date().toLocaleTimeString());
      document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
    } catch (error) {
      state.classList.add('stale');
      text(state, 'not updating: ' + error.message);
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }
  poll();
})();
