// The feedback dashboard: reads GET /v1/stats and GET /v1/feedback with an API key kept in
// sessionStorage, draws its charts as plain SVG and exports the filtered records as CSV.
// No dependencies, no inline script or style: the page runs under a strict Content-Security-Policy.

const KEY_STORAGE = "feedback-dashboard:api-key";
const KEY_SHAPE = /^fbk_[A-Za-z0-9_-]{43}$/;
// Relative to the page, so a deployed stage prefix (/prod/dashboard) is kept.
const API_ROOT = new URL("v1/", document.baseURI);
const DEFAULT_DAYS = 30;
const MAX_DAYS = 366; // GET /v1/stats answers at most 366 days
const PAGE_LIMIT_MAX = 100; // GET /v1/feedback's largest page
// Agents are found in the newest records of the range; each one found then gets exact counts.
const AGENT_SCAN_PAGES = 5;
const AGENTS_SHOWN = 12;
const SVG = "http://www.w3.org/2000/svg";
const CSV_COLUMNS = [
  "feedback_id", "project", "run_id", "user_id", "session_id", "agent", "outcome", "score", "weight",
  "comment", "tags", "source", "details", "context", "created_at", "updated_at", "version", "expires_at",
];
// Spreadsheets run a cell starting with one of these as a formula (CSV injection).
const FORMULA_START = /^[=+\-@\t\r]/;

const $ = (id) => document.getElementById(id);

/** A failure worth a sentence to the person reading the dashboard. */
class DashboardError extends Error {
  constructor(message, { badKey = false } = {}) {
    super(message);
    this.badKey = badKey;
  }
}

const state = {
  key: null,
  filters: null,
  cursors: [null], // cursors[i] opens page i; null is the first page
  page: 0,
  nextCursor: null,
  records: new Map(),
  stats: null,
  generation: 0, // bumps on every new load, so a slow answer never paints over a newer one
};

// ---- API ---------------------------------------------------------------------------------------------

async function api(path, params = {}) {
  const url = new URL(path, API_ROOT);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, String(value));
  }
  let response;
  try {
    response = await fetch(url, {
      headers: { Authorization: `Bearer ${state.key}`, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new DashboardError("The feedback service could not be reached. Check the connection and try again.");
  }
  if (response.ok) return response.json();
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: the status alone has to do.
  }
  throw errorFor(response.status, body);
}

function errorFor(status, body) {
  const error = body && typeof body.error === "object" && body.error ? body.error : null;
  if (status === 401) {
    return new DashboardError(
      "This API key was not accepted: it is unknown or has been revoked. Check the key and enter it again.",
      { badKey: true },
    );
  }
  if (status === 403) {
    if (!error) {
      return new DashboardError("This is not an API key: a key is fbk_ followed by 43 letters, digits, - or _.", {
        badKey: true,
      });
    }
    return new DashboardError(
      "This API key may not read feedback: it needs the feedback:read scope.",
      { badKey: true },
    );
  }
  if (status === 422 && error) {
    const fields = (error.details || []).map((detail) => `${detail.field}: ${detail.message}`).join("; ");
    return new DashboardError(`The service refused the filters. ${fields || error.message}`);
  }
  if (status === 429) return new DashboardError("The service is busy right now. Wait a moment and try again.");
  const said = error ? `: ${error.message}` : "";
  return new DashboardError(`The service answered ${status}${said}. Try again in a moment.`);
}

// ---- dates (all UTC) ---------------------------------------------------------------------------------

const DAY_MS = 86_400_000;

function today() {
  return new Date().toISOString().slice(0, 10);
}

function addDays(day, days) {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

function daysBetween(start, end) {
  return Math.round((Date.parse(`${end}T00:00:00Z`) - Date.parse(`${start}T00:00:00Z`)) / DAY_MS);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function shortDay(day) {
  return `${MONTHS[Number(day.slice(5, 7)) - 1]} ${Number(day.slice(8, 10))}`;
}

function longDay(day) {
  return `${shortDay(day)}, ${day.slice(0, 4)}`;
}

/** "2026-11-23T08:05:09.123Z" as "2026-11-23 08:05:09" (the column says UTC). */
function timestamp(iso) {
  return typeof iso === "string" ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, "") : "";
}

// ---- formatting --------------------------------------------------------------------------------------

const integer = new Intl.NumberFormat("en-US");

function share(positive, negative) {
  const votes = positive + negative;
  return votes ? `${Math.round((100 * positive) / votes)}%` : "–";
}

function mean(value) {
  return value === null || value === undefined ? "–" : value.toFixed(2);
}

function element(tag, properties = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(properties)) {
    if (name === "className") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

// ---- notices -----------------------------------------------------------------------------------------

function showNotice(message, kind = "error") {
  const notice = $("notice");
  notice.textContent = message;
  notice.className = `notice ${kind}`;
  notice.hidden = false;
}

function clearNotice() {
  $("notice").hidden = true;
  $("notice").textContent = "";
}

function fail(error) {
  if (!(error instanceof DashboardError)) {
    console.error(error);
    showNotice("Something went wrong while drawing the dashboard. Reload the page to try again.");
    return;
  }
  showNotice(error.message);
  if (error.badKey) {
    forgetKey({ keepNotice: true });
    $("api-key").focus();
  }
}

// ---- the key -----------------------------------------------------------------------------------------

function useKey(key) {
  state.key = key;
  sessionStorage.setItem(KEY_STORAGE, key);
  // Which key is in use, without showing it: its last characters.
  $("api-key").placeholder = `In use: fbk_…${key.slice(-4)}`;
  $("forget-key").hidden = false;
  $("welcome").hidden = true;
  $("filters").hidden = false;
}

function forgetKey({ keepNotice = false } = {}) {
  state.key = null;
  state.generation += 1;
  sessionStorage.removeItem(KEY_STORAGE);
  $("api-key").value = "";
  $("api-key").placeholder = "fbk_…";
  $("forget-key").hidden = true;
  $("welcome").hidden = false;
  $("filters").hidden = true;
  $("report").hidden = true;
  if (!keepNotice) clearNotice();
}

function onKeySubmit(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (!KEY_SHAPE.test(key)) {
    showNotice(
      key
        ? "This is not an API key: a key is fbk_ followed by 43 letters, digits, - or _."
        : "Enter an API key to open the dashboard.",
    );
    $("api-key").focus();
    return;
  }
  $("api-key").value = "";
  useKey(key);
  loadAll();
}

// ---- filters -----------------------------------------------------------------------------------------

function readFilters() {
  const form = $("filters");
  const value = (name) => form.elements[name].value.trim();
  return {
    start: value("start"),
    end: value("end"),
    outcome: value("outcome"),
    agent: value("agent"),
    session_id: value("session_id"),
    user_id: value("user_id"),
  };
}

function filterProblem(filters) {
  const day = /^\d{4}-\d{2}-\d{2}$/;
  if (!day.test(filters.start) || !day.test(filters.end)) return "Choose both dates of the range.";
  if (filters.start > filters.end) return "The first day must not be after the last day.";
  if (daysBetween(filters.start, filters.end) >= MAX_DAYS) return `Choose at most ${MAX_DAYS} days.`;
  return null;
}

function resetFilters() {
  const form = $("filters");
  form.reset();
  form.elements.end.value = today();
  form.elements.start.value = addDays(today(), -(DEFAULT_DAYS - 1));
}

function onFiltersSubmit(event) {
  event.preventDefault();
  loadAll();
}

/** The query of GET /v1/feedback for the filters: its `end` is exclusive, the form's last day is not. */
function feedbackQuery(filters) {
  return {
    start: filters.start,
    end: addDays(filters.end, 1),
    outcome: filters.outcome,
    agent: filters.agent,
    session_id: filters.session_id,
    user_id: filters.user_id,
  };
}

// ---- loading -----------------------------------------------------------------------------------------

async function loadAll() {
  const filters = readFilters();
  const problem = filterProblem(filters);
  $("filters-error").hidden = !problem;
  $("filters-error").textContent = problem || "";
  if (problem) return;
  clearNotice();
  state.filters = filters;
  state.cursors = [null];
  state.page = 0;
  const generation = ++state.generation;
  document.body.classList.add("loading");
  $("report").hidden = false; // shown first: the charts are drawn to the width they get
  try {
    await Promise.all([loadStats(generation), loadAgents(generation), loadPage(generation)]);
  } catch (error) {
    if (generation === state.generation) fail(error);
  } finally {
    if (generation === state.generation) document.body.classList.remove("loading");
  }
}

async function loadStats(generation) {
  const { start, end, agent } = state.filters;
  const stats = await api("stats", { start, end, agent, granularity: "day" });
  if (generation !== state.generation) return;
  state.stats = stats;
  renderSummary(stats.total, start, end, agent);
  renderVotesChart(stats.buckets);
  renderScoreChart(stats.buckets);
}

async function loadPage(generation) {
  const limit = Number($("page-size").value);
  const cursor = state.cursors[state.page];
  const page = await api("feedback", { ...feedbackQuery(state.filters), limit, cursor });
  if (generation !== state.generation) return;
  state.nextCursor = page.next_cursor;
  renderRecords(page.items);
}

async function turnPage(step) {
  if (step > 0) {
    if (!state.nextCursor) return;
    state.cursors[state.page + 1] = state.nextCursor;
  }
  state.page = Math.max(0, state.page + step);
  const generation = ++state.generation;
  document.body.classList.add("loading");
  try {
    await loadPage(generation);
  } catch (error) {
    if (generation === state.generation) fail(error);
  } finally {
    if (generation === state.generation) document.body.classList.remove("loading");
  }
}

/** Every record of a query, newest first, walking next_cursor to the end (the CSV export). */
async function* allRecords(query) {
  let cursor = null;
  do {
    const page = await api("feedback", { ...query, limit: PAGE_LIMIT_MAX, cursor });
    yield* page.items;
    cursor = page.next_cursor;
  } while (cursor);
}

async function loadAgents(generation) {
  const { start, end } = state.filters;
  const seen = new Map();
  let cursor = null;
  let scannedAll = false;
  for (let pages = 0; pages < AGENT_SCAN_PAGES && !scannedAll; pages += 1) {
    const page = await api("feedback", { start, end: addDays(end, 1), limit: PAGE_LIMIT_MAX, cursor });
    for (const record of page.items) {
      if (record.agent) seen.set(record.agent, (seen.get(record.agent) || 0) + 1);
    }
    cursor = page.next_cursor;
    scannedAll = !cursor;
  }
  const agents = [...seen.keys()].sort((a, b) => seen.get(b) - seen.get(a) || a.localeCompare(b));
  const shown = agents.slice(0, AGENTS_SHOWN);
  const [all, ...each] = await Promise.all([
    api("stats", { start, end, granularity: "total" }),
    ...shown.map((agent) => api("stats", { start, end, agent, granularity: "total" })),
  ]);
  if (generation !== state.generation) return;
  // Only when every record was seen and every agent listed is the remainder surely feedback with no agent.
  const everyAgentListed = scannedAll && agents.length === shown.length;
  renderAgents(all.total, shown.map((agent, index) => ({ agent, total: each[index].total })), everyAgentListed);
}

// ---- rendering: overview -----------------------------------------------------------------------------

function renderSummary(total, start, end, agent) {
  $("summary-range").textContent = `${longDay(start)} – ${longDay(end)} (UTC)${agent ? `, agent ${agent}` : ""}`;
  $("total-positive").textContent = integer.format(total.positive);
  $("total-negative").textContent = integer.format(total.negative);
  $("total-share").textContent = share(total.positive, total.negative);
  $("total-mean").textContent = mean(total.score_weighted_mean);
  $("total-scored").textContent = total.score_count
    ? `weighted, from ${integer.format(total.score_count)} score${total.score_count === 1 ? "" : "s"}`
    : "no scores yet";
  $("total-comments").textContent = integer.format(total.comments);
  const empty = !(total.positive || total.negative || total.score_count || total.comments);
  $("stats-empty").hidden = !empty;
  $("stats-empty").textContent = empty
    ? "No feedback in these days yet. New feedback shows up here within seconds of being sent."
    : "";
}

/** Round tick values for an axis from 0 to at least `max`. */
function ticks(max, count = 4) {
  if (max <= 0) return [0, 1];
  const rough = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough);
  const values = [];
  for (let value = 0; value < max + step; value += step) values.push(value);
  return values;
}

function chartFrame(container, height) {
  const width = Math.max(280, Math.floor(container.clientWidth || 640));
  const frame = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    class: "chart-svg",
  });
  return { frame, width };
}

function dayLabels(frame, buckets, x, band, bottom, width) {
  const every = Math.max(1, Math.ceil(buckets.length / Math.max(1, Math.floor(width / 64))));
  buckets.forEach((bucket, index) => {
    const last = buckets.length - 1;
    // Every `every`-th day, and the last one, with room between them.
    if (index !== last && (index % every !== 0 || (index !== 0 && last - index < every))) return;
    // Labels at either end stay inside the chart rather than centred on their bar.
    const centre = x(index) + band / 2;
    const anchor = centre < 24 + x(0) ? "start" : centre > width - 28 ? "end" : "middle";
    const at = anchor === "start" ? x(index) : anchor === "end" ? x(index) + band : centre;
    frame.append(
      svg("text", { x: at, y: bottom + 16, class: "axis-label", "text-anchor": anchor }, shortDay(bucket.start)),
    );
  });
}

function renderVotesChart(buckets) {
  const container = $("votes-chart");
  const height = 220;
  const margin = { top: 10, right: 8, bottom: 26, left: 36 };
  const { frame, width } = chartFrame(container, height);
  const totals = buckets.map((b) => b.positive + b.negative);
  const scale = ticks(Math.max(...totals, 0));
  const top = scale[scale.length - 1];
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const bottom = margin.top + plotHeight;
  const band = plotWidth / Math.max(1, buckets.length);
  const x = (index) => margin.left + index * band;
  const y = (value) => bottom - (value / top) * plotHeight;
  for (const value of scale) {
    frame.append(svg("line", { x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value), class: "grid" }));
    frame.append(svg("text", { x: margin.left - 6, y: y(value) + 4, class: "axis-label", "text-anchor": "end" },
      integer.format(value)));
  }
  const barWidth = Math.max(1, band * 0.72);
  buckets.forEach((bucket, index) => {
    const group = svg("g", { class: "bar" });
    group.append(svg("title", {}, `${longDay(bucket.start)}: ${bucket.positive} positive, ${bucket.negative} negative`));
    const left = x(index) + (band - barWidth) / 2;
    if (bucket.positive) {
      group.append(svg("rect", { x: left, width: barWidth, y: y(bucket.positive), height: bottom - y(bucket.positive), class: "positive" }));
    }
    if (bucket.negative) {
      const upTo = bucket.positive + bucket.negative;
      group.append(svg("rect", { x: left, width: barWidth, y: y(upTo), height: y(bucket.positive) - y(upTo), class: "negative" }));
    }
    frame.append(group);
  });
  dayLabels(frame, buckets, x, band, bottom, width);
  const positive = buckets.reduce((sum, b) => sum + b.positive, 0);
  const negative = buckets.reduce((sum, b) => sum + b.negative, 0);
  frame.setAttribute("aria-label",
    `Bar chart of votes per UTC day: ${positive} positive and ${negative} negative over ${buckets.length} days.`);
  container.replaceChildren(frame);
  fillTable("votes-table", buckets.map((b) => [b.start, integer.format(b.positive), integer.format(b.negative)]));
}

function renderScoreChart(buckets) {
  const container = $("score-chart");
  const height = 220;
  const margin = { top: 10, right: 8, bottom: 26, left: 36 };
  const { frame, width } = chartFrame(container, height);
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const bottom = margin.top + plotHeight;
  const band = plotWidth / Math.max(1, buckets.length);
  const x = (index) => margin.left + index * band;
  const y = (value) => margin.top + ((10 - value) / 20) * plotHeight; // scores run from -10 to 10
  for (const value of [-10, -5, 0, 5, 10]) {
    frame.append(svg("line", {
      x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value), class: value === 0 ? "grid zero" : "grid",
    }));
    frame.append(svg("text", { x: margin.left - 6, y: y(value) + 4, class: "axis-label", "text-anchor": "end" }, value));
  }
  // A day with no score breaks the line rather than inventing a value.
  let path = "";
  let drawing = false;
  buckets.forEach((bucket, index) => {
    const value = bucket.score_weighted_mean;
    if (value === null || value === undefined) {
      drawing = false;
      return;
    }
    const cx = x(index) + band / 2;
    path += `${drawing ? "L" : "M"}${cx.toFixed(1)},${y(value).toFixed(1)}`;
    drawing = true;
  });
  if (path) frame.append(svg("path", { d: path, class: "mean-line" }));
  buckets.forEach((bucket, index) => {
    const value = bucket.score_weighted_mean;
    if (value === null || value === undefined) return;
    const dot = svg("circle", { cx: x(index) + band / 2, cy: y(value), r: 3.5, class: "mean-dot" });
    dot.append(svg("title", {}, `${longDay(bucket.start)}: mean ${mean(value)} from ${bucket.score_count} scores`));
    frame.append(dot);
  });
  dayLabels(frame, buckets, x, band, bottom, width);
  const scored = buckets.filter((b) => b.score_count);
  frame.setAttribute("aria-label", scored.length
    ? `Line chart of the weighted mean score per UTC day, on ${scored.length} of ${buckets.length} days with scores.`
    : "Line chart of the mean score per UTC day: no scores in these days.");
  container.replaceChildren(frame);
  fillTable("score-table", buckets.map((b) => [b.start, mean(b.score_weighted_mean), integer.format(b.score_count)]));
}

function fillTable(id, rows) {
  $(id).tBodies[0].replaceChildren(
    ...rows.map(([first, ...rest]) =>
      element("tr", {}, [element("th", { scope: "row", text: first }), ...rest.map((text) => element("td", { text }))])),
  );
}

function renderAgents(all, agents, everyAgentListed) {
  const rows = agents
    .filter(({ total }) => total.positive || total.negative || total.score_count || total.comments)
    .sort((a, b) => b.total.positive + b.total.negative - (a.total.positive + a.total.negative));
  const counted = (name) => rows.reduce((sum, { total }) => sum + total[name], 0);
  const rest = {
    positive: all.positive - counted("positive"),
    negative: all.negative - counted("negative"),
    comments: all.comments - counted("comments"),
    score_weighted_mean: null,
  };
  const agentList = $("agent-names");
  agentList.replaceChildren(...agents.map(({ agent }) => element("option", { value: agent })));
  const body = $("agents-table").tBodies[0];
  const tableRows = rows.map(({ agent, total }) => agentRow(agent, total, true));
  if (rest.positive || rest.negative || rest.comments) {
    tableRows.push(agentRow(everyAgentListed ? "No agent" : "Other agents, or none", rest, false));
  }
  body.replaceChildren(...tableRows);
  if (!tableRows.length) {
    body.append(element("tr", {}, [element("td", { colspan: "6", className: "empty", text: "No feedback in these days yet." })]));
  }
  $("agents-note").textContent =
    "Exact counts for the dates above, whatever the other filters. Agents are found in the newest " +
    `${AGENT_SCAN_PAGES * PAGE_LIMIT_MAX} records of the range; select one to filter by it.`;
}

function agentRow(agent, total, selectable) {
  const votes = total.positive + total.negative;
  const name = selectable
    ? element("button", { type: "button", className: "link", text: agent, "data-agent": agent })
    : element("span", { className: "muted", text: agent });
  const bar = element("span", { className: "share-bar", "aria-hidden": "true" }, [element("span")]);
  bar.firstChild.style.width = votes ? `${(100 * total.positive) / votes}%` : "0";
  return element("tr", {}, [
    element("th", { scope: "row" }, [name]),
    element("td", { text: integer.format(total.positive) }),
    element("td", { text: integer.format(total.negative) }),
    element("td", {}, [bar, document.createTextNode(` ${share(total.positive, total.negative)}`)]),
    element("td", { text: mean(total.score_weighted_mean) }),
    element("td", { text: integer.format(total.comments) }),
  ]);
}

// ---- rendering: records ------------------------------------------------------------------------------

function outcomeBadge(outcome) {
  if (!outcome) return element("span", { className: "muted", text: "–" });
  return element("span", { className: `badge ${outcome}`, text: outcome === "positive" ? "Positive" : "Negative" });
}

function idCell(value) {
  return value ? element("td", { className: "id", text: value, title: value }) : element("td", { className: "muted", text: "–" });
}

function renderRecords(items) {
  state.records = new Map(items.map((record) => [record.feedback_id, record]));
  const body = $("feedback-table").tBodies[0];
  body.replaceChildren(
    ...items.map((record) =>
      element("tr", {}, [
        element("td", { className: "nowrap", text: timestamp(record.created_at) }),
        element("td", {}, [outcomeBadge(record.outcome)]),
        element("td", { className: "number", text: record.score ?? "–" }),
        element("td", { className: "comment" }, [
          record.comment ? element("span", { text: record.comment }) : element("span", { className: "muted", text: "–" }),
        ]),
        idCell(record.agent),
        idCell(record.user_id),
        idCell(record.session_id),
        element("td", {}, [
          element("button", {
            type: "button", className: "secondary small", text: "Details", "data-feedback-id": record.feedback_id,
            "aria-label": `Details of the feedback of ${record.user_id} on ${timestamp(record.created_at)}`,
          }),
        ]),
      ])),
  );
  const empty = items.length === 0;
  $("feedback-empty").hidden = !empty;
  $("feedback-empty").textContent = empty
    ? state.page === 0
      ? "No feedback matches these filters. Widen the dates or clear a filter."
      : "No more feedback."
    : "";
  const size = Number($("page-size").value);
  const first = state.page * size + 1;
  $("page-label").textContent = empty ? `Page ${state.page + 1}` : `Page ${state.page + 1} · rows ${first}–${first + items.length - 1}`;
  $("page-previous").disabled = state.page === 0;
  $("page-next").disabled = !state.nextCursor;
}

function json(value) {
  return JSON.stringify(value, null, 2);
}

function openDrawer(record) {
  const fields = [
    ["Created (UTC)", timestamp(record.created_at)],
    ["Updated (UTC)", timestamp(record.updated_at)],
    ["Outcome", record.outcome],
    ["Score", record.score],
    ["Weight", record.weight],
    ["Comment", record.comment],
    ["Agent", record.agent],
    ["User", record.user_id],
    ["Session", record.session_id],
    ["Run", record.run_id],
    ["Source", record.source],
    ["Tags", record.tags && record.tags.length ? record.tags.join(", ") : null],
    ["Details", record.details ? json(record.details) : null, "pre"],
    ["Context", record.context ? json(record.context) : null, "pre"],
    ["Version", record.version],
    ["Expires (UTC)", record.expires_at ? timestamp(new Date(record.expires_at * 1000).toISOString()) : "never"],
    ["Feedback id", record.feedback_id],
    ["Project", record.project],
  ];
  $("drawer-fields").replaceChildren(
    ...fields.flatMap(([label, value, kind]) => [
      element("dt", { text: label }),
      element("dd", { className: value === null || value === undefined ? "muted" : kind || "" },
        [kind === "pre" && value !== null ? element("pre", { text: value }) : document.createTextNode(value ?? "–")]),
    ]),
  );
  $("drawer").showModal();
}

// ---- CSV export --------------------------------------------------------------------------------------

/** One CSV cell (RFC 4180), text that a spreadsheet would run as a formula made inert by a leading '. */
function csvCell(value) {
  if (value === null || value === undefined) return "";
  let text;
  if (typeof value === "number") text = String(value);
  else if (typeof value === "object") text = JSON.stringify(value);
  else {
    text = String(value);
    if (FORMULA_START.test(text)) text = `'${text}`;
  }
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function toCsv(records) {
  const lines = [CSV_COLUMNS.join(",")];
  for (const record of records) lines.push(CSV_COLUMNS.map((column) => csvCell(record[column])).join(","));
  return `${lines.join("\r\n")}\r\n`;
}

async function exportCsv() {
  const button = $("export-csv");
  const status = $("export-status");
  const filters = state.filters;
  button.disabled = true;
  const records = [];
  try {
    for await (const record of allRecords(feedbackQuery(filters))) {
      records.push(record);
      if (records.length % PAGE_LIMIT_MAX === 0) status.textContent = `Exporting… ${integer.format(records.length)} records so far`;
    }
    // A byte order mark, so that spreadsheets read the file as UTF-8.
    const blob = new Blob(["\uFEFF", toCsv(records)], { type: "text/csv;charset=utf-8" });
    const link = element("a", { href: URL.createObjectURL(blob), download: `feedback-${filters.start}-to-${filters.end}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    status.textContent = `Exported ${integer.format(records.length)} record${records.length === 1 ? "" : "s"}.`;
  } catch (error) {
    status.textContent = "";
    fail(error);
  } finally {
    button.disabled = false;
  }
}

// ---- wiring ------------------------------------------------------------------------------------------

function redrawCharts() {
  if ($("report").hidden || !state.stats) return;
  renderVotesChart(state.stats.buckets);
  renderScoreChart(state.stats.buckets);
}

function start() {
  resetFilters();
  $("key-form").addEventListener("submit", onKeySubmit);
  $("forget-key").addEventListener("click", () => forgetKey());
  $("filters").addEventListener("submit", onFiltersSubmit);
  $("filters-reset").addEventListener("click", () => {
    resetFilters();
    loadAll();
  });
  $("page-size").addEventListener("change", () => state.filters && loadAll());
  $("page-previous").addEventListener("click", () => turnPage(-1));
  $("page-next").addEventListener("click", () => turnPage(1));
  $("export-csv").addEventListener("click", exportCsv);
  $("feedback-table").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-feedback-id]");
    const record = button && state.records.get(button.dataset.feedbackId);
    if (record) openDrawer(record);
  });
  $("agents-table").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-agent]");
    if (!button) return;
    $("filter-agent").value = button.dataset.agent;
    loadAll();
  });
  $("drawer-close").addEventListener("click", () => $("drawer").close());
  $("drawer").addEventListener("click", (event) => {
    if (event.target === $("drawer")) $("drawer").close(); // a click on the backdrop
  });
  let resizeTimer = null;
  let lastWidth = window.innerWidth;
  window.addEventListener("resize", () => {
    if (window.innerWidth === lastWidth) return;
    lastWidth = window.innerWidth;
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(redrawCharts, 250);
  });
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved && KEY_SHAPE.test(saved)) {
    useKey(saved);
    loadAll();
  }
}

start();
