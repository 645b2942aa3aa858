// The operations dashboard: fetches /dashboard/data (figures and server-rendered SVG charts) and
// posts an operator's marks to /feedback. No framework, no chart library: the charts come as SVG.
// Text from traces (requests, names) is set with textContent, never as HTML.
"use strict";

const $ = (selector) => document.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%");
const ms = (x) => (x === null || x === undefined ? "–" : x.toFixed(1));
const when = (t) => new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ");

function rate(p) {
  if (!p.n) return { value: "–", detail: "no data" };
  return {
    value: pct(p.rate),
    detail: `${p.k}/${p.n}, 95% CI ${pct(p.ci95[0])}–${pct(p.ci95[1])}`,
  };
}

function tile(id, label, value, detail) {
  return el("div", { class: "tile", id: "tile-" + id },
    el("div", { class: "label", text: label }),
    el("div", { class: "value", text: String(value) }),
    el("div", { class: "detail", text: detail || "" }));
}

function renderTiles(a) {
  const box = $("#tiles");
  box.replaceChildren();
  const completion = rate(a.completion);
  const clarify = rate(a.clarify);
  const accuracy = rate(a.routing_accuracy);
  const verdicts = Object.entries(a.feedback.verdicts).map(([k, v]) => `${k} ${v}`).join(", ");
  box.append(
    tile("volume", "turns", a.volume, `${a.threads} threads, ${a.users} users`),
    tile("completion", "completed", completion.value, completion.detail),
    tile("clarify", "asked to clarify", clarify.value, clarify.detail),
    tile("accuracy", "routing accuracy (feedback)", accuracy.value, accuracy.detail),
    tile("feedback", "feedback", a.feedback.count, verdicts || "none yet"),
    tile("turn-time", "turn time p50", ms(a.turn_ms.p50) + " ms", `p95 ${ms(a.turn_ms.p95)} ms`),
    tile("models", "model calls", a.models.calls, `${a.models.tokens} tokens`),
  );
}

function renderCharts(charts) {
  for (const node of document.querySelectorAll(".chart")) {
    const name = node.id.replace("chart-", "");
    // Server-rendered by matplotlib from the same data: trusted markup, not trace text.
    node.innerHTML = charts[name] || "";
  }
}

function renderHealth(capabilities) {
  const body = $("#health-table tbody");
  body.replaceChildren();
  for (const [name, c] of Object.entries(capabilities)) {
    const cells = [name, c.selections, c.steps, ms(c.latency_ms_p50), ms(c.latency_ms_p95), c.errors,
      c.retries, c.approvals_asked, c.approved,
      c.seconds_to_approve_p50 === null ? "–" : c.seconds_to_approve_p50.toFixed(1)];
    body.append(el("tr", { "data-capability": name }, ...cells.map((v) => el("td", { text: String(v) }))));
  }
}

function renderExperiments(experiments) {
  const box = $("#experiments-body");
  box.replaceChildren();
  if (!experiments.length) {
    box.append(el("p", { class: "muted", text: "no experiments in this window" }));
    return;
  }
  for (const { name, comparison } of experiments) {
    const section = el("div", { class: "experiment" }, el("h3", { text: name }));
    if (comparison && comparison.verdict) {
      section.append(el("p", { class: "verdict", text: String(comparison.verdict) }));
    }
    section.append(el("pre", { text: JSON.stringify(comparison, null, 2) }));
    box.append(section);
  }
}

function renderRecommendations(rec) {
  const list = $("#recommendations-list");
  list.replaceChildren();
  for (const c of rec.most_corrected) {
    list.append(el("li", { text: `corrected: ${c.capability} (wrongly selected ${c.wrongly_selected}, missed ${c.missed})` }));
  }
  for (const p of rec.confused_pairs) {
    list.append(el("li", { text: `confused: selected ${p.selected} where ${p.correct} was right (${p.count}×)` }));
  }
  for (const cl of rec.uncovered_clusters) {
    list.append(el("li", { text: `uncovered: ${cl.size} clarified requests like “${cl.representative}”: a new capability?` }));
  }
  if (!list.children.length) {
    list.append(el("li", { class: "muted", text: "none yet (they come from feedback and clarified requests)" }));
  }
}

function stopClass(reason) {
  return reason === "success" ? "stop-success" : reason === "clarify" ? "stop-clarify" : "stop-other";
}

async function sendFeedback(row, body) {
  const buttons = row.querySelectorAll("button");
  buttons.forEach((b) => (b.disabled = true));
  row.querySelector(".row-error")?.remove();
  try {
    const reply = await fetch("/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ run_id: row.dataset.runId, ...body }),
    });
    const answer = await reply.json();
    if (!reply.ok) throw new Error(answer.error || reply.statusText);
    const extra = answer.correct.length ? ` → ${answer.correct.join(", ")}` : "";
    setStatus(`stored: ${answer.verdict}${extra} for run ${answer.run_id.slice(0, 8)}`);
    row.remove();
    await load();
  } catch (error) {
    row.querySelector(".actions").append(el("span", { class: "row-error", text: String(error.message || error) }));
    buttons.forEach((b) => (b.disabled = false));
  }
}

function renderQueue(queue, capabilities) {
  const body = $("#queue-table tbody");
  body.replaceChildren();
  $("#queue-empty").hidden = queue.length > 0;
  $("#queue-table").hidden = queue.length === 0;
  for (const turn of queue) {
    const select = el("select", { "aria-label": "the right capability" });
    for (const name of capabilities) select.append(el("option", { value: name, text: name }));
    if (turn.selected.length && capabilities.includes(turn.selected[0])) select.value = turn.selected[0];
    const correct = el("button", { type: "button", class: "mark-correct", text: "Mark" });
    const good = el("button", { type: "button", class: "mark-good", text: "Right as routed" });
    const outOfScope = el("button", { type: "button", class: "mark-out-of-scope", text: "Out of scope" });
    const selected = turn.selected.length
      ? el("span", {}, ...turn.selected.map((s) => el("span", { class: "tag", text: s })))
      : el("span", { class: "muted", text: "none" });
    const score = turn.top_score === null ? "–" : `${turn.top_capability} ${turn.top_score.toFixed(2)}`;
    const row = el("tr", { "data-run-id": turn.run_id },
      el("td", { text: when(turn.started_at) }),
      el("td", { class: "request", text: turn.request }),
      el("td", {}, selected),
      el("td", { text: score }),
      el("td", { class: stopClass(turn.stop_reason), text: turn.stop_reason }),
      el("td", { class: "actions" }, select, correct, good, outOfScope));
    correct.addEventListener("click", () => sendFeedback(row, { verdict: "correct", correct: [select.value] }));
    good.addEventListener("click", () => sendFeedback(row, { verdict: "good" }));
    outOfScope.addEventListener("click", () => sendFeedback(row, { verdict: "out_of_scope" }));
    body.append(row);
  }
}

function setStatus(text, isError = false) {
  const status = $("#status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

let loading = null;

async function load() {
  const since = $("#since").value;
  const request = fetch(`/dashboard/data?since=${encodeURIComponent(since)}&charts=svg`);
  loading = request;
  let data;
  try {
    const reply = await request;
    data = await reply.json();
    if (!reply.ok) throw new Error(data.error || reply.statusText);
  } catch (error) {
    setStatus(`cannot load the figures: ${error.message || error}`, true);
    return;
  }
  if (loading !== request) return; // a newer load started meanwhile
  const a = data.analytics;
  renderTiles(a);
  const empty = a.volume === 0;
  $("#empty").hidden = !empty;
  $("#panels").hidden = empty;
  renderCharts(data.charts || {});
  renderHealth(a.capabilities);
  renderExperiments(data.experiments);
  renderQueue(data.queue, data.capabilities);
  renderRecommendations(a.recommendations);
  document.body.dataset.loaded = String(data.generated_at);
  if (!$("#status").textContent.startsWith("stored")) {
    setStatus(`updated ${when(data.generated_at)} UTC`);
  }
}

$("#since").addEventListener("change", () => { setStatus("loading…"); load(); });
$("#refresh").addEventListener("click", () => { setStatus("loading…"); load(); });
load();
