// The agent console's socket (PROTOCOL.md §3): a live queue, and the open conversation's
// events, notes and presence. User text is only ever set with textContent.
(() => {
  "use strict";

  const body = document.body;
  const agentId = Number(body.dataset.agentId);
  const conversationId = body.dataset.conversationId || null;
  const filtered = body.dataset.filtered === "1";
  const PING_MS = 20000;
  // Strings through Django's JavaScript catalog (/jsi18n/, the agent's language); as written without it.
  const gettext = window.gettext || ((text) => text);
  const fill = (format, values) => format.replace(/%\((\w+)\)s/g, (_m, key) => String(values[key]));
  const STATE_LABELS = { bot: gettext("Assistant"), waiting: gettext("Waiting for an agent"),
    human: gettext("With an agent"), closed: gettext("Closed") };

  const $ = (id) => document.getElementById(id);
  const connLabel = $("kf-conn");
  const queueList = $("kf-queue-list");
  const history = $("kf-history");
  const composer = $("kf-composer");
  const textBox = $("kf-text");
  const typingLine = $("kf-typing");

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }
  const str = (value) => (value === null || value === undefined ? "" : String(value));
  const uuid = () => (crypto.randomUUID ? crypto.randomUUID()
    : "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) =>
      (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16)));

  // ------------------------------------------------------------------ state
  const state = {
    ws: null,
    ready: false,
    retry: 0,
    lastSeq: Number(body.dataset.lastSeq || 0),
    queue: new Map(),
    pending: new Map(), // client_msg_id -> {frame, conn}: unacked replies and notes, in the order written
    conn: 0, // counts connections: a frame is sent once per connection, in order
    subscribed: false,
    notes: new Set([...document.querySelectorAll("[data-note-id]")].map((n) => n.dataset.noteId)),
    streams: new Map(), // message_id -> {node, text}
    typingOn: false,
    typingTimer: null,
    canned: JSON.parse(($("kf-canned-data") || {}).textContent || "[]"),
  };
  for (const entry of JSON.parse(($("kf-queue-data") || {}).textContent || "[]")) state.queue.set(entry.id, entry);
  if (conversationId && state.queue.has(conversationId)) queueMicrotask(() => setHeader(state.queue.get(conversationId)));

  // ------------------------------------------------------------------ socket
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/agent/`);
    state.ws = ws;
    ws.onmessage = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      // The page may already show an event that committed while it was rendered.
      if (history && event.conversation_id === conversationId && typeof event.seq === "number"
        && history.querySelector(`[data-seq="${event.seq}"]`)) { seen(event); return; }
      (handlers[event.type] || (() => {}))(event);
    };
    ws.onclose = () => {
      state.ready = false;
      if (state.ws !== ws) return;
      connLabel.textContent = gettext("Connection lost. Reconnecting…");
      connLabel.dataset.state = "offline";
      const delay = Math.min(5000, 500 * 2 ** state.retry) * (0.5 + Math.random() / 2);
      state.retry += 1;
      setTimeout(connect, delay);
    };
  }

  function send(frame) {
    if (!state.ready || state.ws.readyState !== WebSocket.OPEN) return false;
    state.ws.send(JSON.stringify(frame));
    return true;
  }

  setInterval(() => send({ type: "ping", ts: Date.now() }), PING_MS);
  setInterval(() => renderQueue(), 60000); // waiting times move on

  // ------------------------------------------------------------------ queue
  function rank(entry) {
    if (entry.state === "waiting") return 0;
    if (entry.state === "bot") return 1;
    if (entry.state === "human") return entry.assignee && entry.assignee.id === agentId ? 2 : 3;
    return 4;
  }
  function sortedQueue() {
    return [...state.queue.values()].sort((a, b) => rank(a) - rank(b)
      || str(a.waiting_since).localeCompare(str(b.waiting_since))
      || str(b.updated_at).localeCompare(str(a.updated_at)));
  }
  function queueItem(entry) {
    const name = entry.customer.name || entry.customer.email || entry.customer.external_id || "Anonymous";
    const last = entry.last_message ? str(entry.last_message.text) : "";
    return el("li", { class: `kf-queue-item kf-state-${str(entry.state)}`, dataset: { id: entry.id, state: str(entry.state) },
      "aria-current": entry.id === conversationId ? "true" : null },
    el("a", { href: `/console/c/${encodeURIComponent(entry.id)}/` },
      el("span", { class: "kf-q-name", text: name }),
      el("span", { class: "kf-q-state", text: str(entry.state) }),
      entry.assignee ? el("span", { class: "kf-q-assignee", text: str(entry.assignee.name) }) : null,
      entry.unread ? el("span", { class: "kf-q-unread", "aria-label": "unread", text: String(entry.unread) }) : null,
      entry.csat ? el("span", { class: "kf-q-csat", text: `${entry.csat.score}/5` }) : null,
      entry.waiting_since ? el("span", { class: "kf-q-wait", text: fill(gettext("waiting %(time)s"), { time: waited(entry.waiting_since) }) }) : null,
      slaBadge(entry),
      el("span", { class: "kf-q-last", text: last.length > 80 ? `${last.slice(0, 79)}…` : last })));
  }
  function waited(since) {
    const minutes = Math.max(0, Math.floor((Date.now() - new Date(since).getTime()) / 60000));
    return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }
  const baseTitle = document.title;
  function renderQueue() {
    // Waiting customers in the tab's title, so a console in a background tab still says so.
    const waiting = [...state.queue.values()].filter((entry) => entry.state === "waiting").length;
    document.title = waiting ? `(${waiting} waiting) ${baseTitle}` : baseTitle;
    const items = sortedQueue()
      .filter((entry) => filtered || entry.state !== "closed" || entry.id === conversationId);
    if (!items.length) { queueList.replaceChildren(el("li", { class: "kf-empty", text: gettext("No conversations.") })); return; }
    queueList.replaceChildren(...items.map(queueItem));
  }

  // ------------------------------------------------------------------ SLA clock
  // The running clock nearest due (entry.sla), counting down each second without re-rendering
  // the queue. Amber when under 20% of its target is left (under 5 min if the start is unknown);
  // red only once the server marked it breached (its due time is in business hours: the server
  // decides), through `sla_breach` or the updated `conversation` entry.
  const SLA_LABELS = { first_response: ["Reply in", "Reply overdue"], resolution: ["Resolve in", "Resolution overdue"] };
  function slaBadge(entry) {
    if (!entry.sla || entry.state === "closed") return null;
    const node = el("span", { class: "kf-q-sla", dataset: { slaDue: str(entry.sla.due_at), slaStart: str(entry.sla.started_at),
      slaKind: str(entry.sla.kind), slaBreached: entry.sla.breached ? "1" : "" } });
    slaTick(node, Date.now());
    return node;
  }
  function slaClockText(ms) {
    const s = Math.floor(Math.abs(ms) / 1000);
    if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} m`;
    return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  }
  function slaTick(node, now) {
    const due = new Date(node.dataset.slaDue).getTime();
    const start = node.dataset.slaStart ? new Date(node.dataset.slaStart).getTime() : NaN;
    const left = due - now;
    const [runningLabel, lateLabel] = SLA_LABELS[node.dataset.slaKind] || ["Due in", "Overdue"];
    let level = "ok";
    if (node.dataset.slaBreached) level = "breached";
    else if (left < (Number.isFinite(start) && due > start ? 0.2 * (due - start) : 5 * 60000)) level = "amber";
    node.dataset.sla = level;
    node.textContent = left > 0 ? `${runningLabel} ${slaClockText(left)}` : `${lateLabel} ${slaClockText(left)}`;
    node.title = level === "breached" ? "SLA breached" : `Due ${new Date(due).toLocaleTimeString()}`;
  }
  setInterval(() => {
    const now = Date.now();
    for (const node of queueList.querySelectorAll(".kf-q-sla")) slaTick(node, now);
  }, 1000);

  // ------------------------------------------------------------------ history
  function scrollDown() { if (history) history.scrollTop = history.scrollHeight; }
  function appendItem(node) { if (history) { history.append(node); scrollDown(); } }
  function messageItem(message, seq) {
    const role = ["customer", "assistant", "agent", "system"].includes(message.role) ? message.role : "system";
    const who = role === "agent" ? str(message.author) || "Agent" : role[0].toUpperCase() + role.slice(1);
    return el("li", { class: `kf-item kf-msg kf-role-${role}`, dataset: { seq: str(seq), messageId: str(message.id), kind: "message" } },
      el("span", { class: "kf-who", text: who }),
      el("span", { class: "kf-text", text: str(message.text) }),
      el("time", { text: new Date(message.created_at || Date.now()).toTimeString().slice(0, 5) }));
  }
  function systemItem(text, kind, seq) {
    return el("li", { class: "kf-item kf-system", dataset: { kind, seq: str(seq) }, text });
  }
  function streamNode(e) {
    let stream = state.streams.get(e.message_id);
    if (!stream) {
      const node = messageItem({ id: e.message_id, role: "assistant", text: "" }, "");
      node.dataset.state = "streaming";
      appendItem(node);
      stream = { node, text: "" };
      state.streams.set(e.message_id, stream);
    }
    return stream;
  }
  function seen(e) { if (typeof e.seq === "number") state.lastSeq = Math.max(state.lastSeq, e.seq); }
  function mine(e) { return e.conversation_id === conversationId; }

  function setHeader(entry) {
    const stateNode = $("kf-state");
    if (!stateNode) return;
    stateNode.textContent = STATE_LABELS[entry.state] || str(entry.state);
    stateNode.className = `kf-state kf-state-${str(entry.state)}`;
    stateNode.dataset.state = str(entry.state);
    $("kf-assignee").textContent = entry.assignee ? `with ${entry.assignee.name}` : "";
    showActions(entry);
    $("kf-csat").textContent = entry.csat ? `${gettext("Rated")} ${entry.csat.score}/5${entry.csat.comment ? `: “${entry.csat.comment}”` : ""}` : "";
  }

  // Offer only what makes sense now (the server decides anyway: a wrong one is `conflict`).
  function showActions(entry) {
    const mineNow = entry.assignee && entry.assignee.id === agentId;
    const open = entry.state !== "closed";
    const show = {
      claim: open && !mineNow,
      release: open && entry.state !== "bot" && (mineNow || !entry.assignee),
      close: open && (mineNow || !entry.assignee),
      assign: open,
    };
    for (const form of document.querySelectorAll("form[data-frame]")) form.hidden = !show[form.dataset.frame];
    if (composer) composer.querySelector("button[value=reply]").disabled = !open || !mineNow;
  }

  function showError(text) {
    let box = document.querySelector(".kf-messages");
    if (!box) {
      box = el("ul", { class: "kf-messages", role: "alert" });
      document.querySelector(".kf-main").before(box);
    }
    box.replaceChildren(el("li", { class: "kf-message-error", text }));
  }

  // ------------------------------------------------------------------ events
  const handlers = {
    agent_ready(e) {
      state.ready = true;
      state.retry = 0;
      connLabel.textContent = fill(gettext("Live · %(name)s"), { name: str(e.agent.name) });
      connLabel.dataset.state = "live";
      if (!filtered) {
        const current = state.queue.get(conversationId); // kept even when closed
        state.queue.clear();
        if (current) state.queue.set(current.id, current);
        for (const entry of e.queue) state.queue.set(entry.id, entry);
      } else {
        for (const entry of e.queue) if (state.queue.has(entry.id)) state.queue.set(entry.id, entry);
      }
      renderQueue();
      // Resubscribe with what we hold: the server replays what we missed, exactly once.
      state.conn += 1;
      state.subscribed = !conversationId;
      if (conversationId) send({ type: "subscribe", conversation_id: conversationId, last_seq: state.lastSeq });
    },
    subscribed(e) {
      if (!mine(e)) return;
      state.subscribed = true;
      flushPending();
    },
    conversation_removed(e) { // moved to a team this agent is not in (or away from them)
      state.queue.delete(e.conversation_id);
      renderQueue();
    },
    conversation(e) {
      const entry = e.conversation;
      if (filtered && !state.queue.has(entry.id)) return;
      state.queue.set(entry.id, entry);
      renderQueue();
      if (entry.id === conversationId) setHeader(entry);
    },
    message(e) {
      seen(e);
      if (!mine(e)) return;
      const stream = state.streams.get(e.message.id);
      const node = messageItem(e.message, e.seq);
      if (stream) { stream.node.replaceWith(node); state.streams.delete(e.message.id); } else appendItem(node);
      if (e.message.role !== "customer") typingLine.hidden = true;
    },
    token(e) {
      if (!mine(e)) return;
      const stream = streamNode(e);
      stream.text += str(e.text);
      stream.node.querySelector(".kf-text").textContent = stream.text;
      scrollDown();
    },
    partial(e) {
      if (!mine(e)) return;
      const stream = streamNode(e);
      stream.text = str(e.text);
      stream.node.querySelector(".kf-text").textContent = stream.text;
    },
    message_end(e) {
      seen(e);
      if (!mine(e)) return;
      const stream = state.streams.get(e.message_id);
      if (stream) {
        stream.node.querySelector(".kf-text").textContent = str(e.text);
        stream.node.dataset.state = "final";
        state.streams.delete(e.message_id);
      }
      if (e.stopped) appendItem(systemItem(gettext("The assistant's answer was stopped."), "stopped", ""));
    },
    feedback(e) {
      // The customer's thumbs up/down on an answer (no seq): shown on that answer, replaced if sent again.
      if (!mine(e)) return;
      const item = [...history.querySelectorAll(".kf-msg")].find((n) => n.dataset.messageId === str(e.message_id));
      if (!item) return;
      let badge = item.querySelector(".kf-feedback");
      if (!badge) {
        badge = el("span", { class: "kf-feedback", title: gettext("The customer's feedback on this answer") });
        item.querySelector(".kf-text").after(badge);
      }
      badge.dataset.helpful = e.helpful ? "true" : "false";
      badge.textContent = `${e.helpful ? "👍" : "👎"}${e.comment ? ` “${str(e.comment)}”` : ""}`;
    },
    tool(e) {
      seen(e);
      if (!mine(e)) return;
      // One line per call, updated as its status changes (arguments and results: on reload).
      const found = [...history.querySelectorAll(".kf-tool")].find((n) => n.dataset.callId === str(e.call_id));
      const status = el("span", { class: "kf-tool-status", text: str(e.status) });
      const line = el("li", { class: "kf-item kf-tool", dataset: { callId: str(e.call_id), kind: "tool" } },
        el("span", { class: "kf-who" }, `Tool · ${str(e.name)} · `, status),
        el("span", { class: "kf-text", text: str(e.detail) }));
      if (!found) { appendItem(line); return; }
      found.querySelector(".kf-tool-status").textContent = str(e.status);
      if (e.detail) found.querySelector(".kf-text").textContent = str(e.detail);
    },
    handoff(e) {
      seen(e);
      if (!mine(e)) return;
      const text = e.state === "human" ? fill(gettext("%(agent)s took over"), { agent: str(e.agent) })
        : e.state === "waiting" ? gettext("Customer asked for a person") : gettext("Handed back to the assistant");
      appendItem(systemItem(text, "handoff", e.seq));
    },
    update(e) {
      seen(e);
      if (!mine(e)) return;
      appendItem(el("li", { class: "kf-item kf-update", dataset: { seq: str(e.seq), kind: "update" } },
        el("span", { class: "kf-who", text: `CRM update · ${str(e.kind)}` }),
        el("span", { class: "kf-text", text: `${str(e.title)}${e.body ? ` — ${str(e.body)}` : ""}` })));
    },
    csat_request(e) {
      seen(e);
      if (!mine(e)) return;
      appendItem(systemItem("Closed · rating asked", "csat_request", e.seq));
    },
    typing(e) {
      if (!mine(e) || e.role !== "customer") return;
      clearTimeout(state.customerTyping);
      typingLine.textContent = gettext("Customer is typing…");
      typingLine.hidden = !e.on;
      if (e.on) state.customerTyping = setTimeout(() => { typingLine.hidden = true; }, 8000);
    },
    note(e) {
      if (!mine(e) || state.notes.has(e.note.id)) return;
      state.notes.add(e.note.id);
      appendItem(el("li", { class: "kf-item kf-note", dataset: { noteId: e.note.id, kind: "note" } },
        el("span", { class: "kf-who", text: `Note · ${e.note.author ? str(e.note.author.name) : "Agent"}` }),
        el("span", { class: "kf-text", text: str(e.note.text) }),
        el("time", { text: new Date(e.note.created_at).toTimeString().slice(0, 5) })));
    },
    presence(e) {
      if (!mine(e)) return;
      const others = e.viewing.filter((a) => a.id !== agentId);
      const typing = new Set(e.typing.filter((a) => a.id !== agentId).map((a) => a.id));
      $("kf-presence").textContent = others.length
        ? `${gettext("Also here:")} ${others.map((a) => `${str(a.name)}${typing.has(a.id) ? ` ${gettext("(typing…)")}` : ""}`).join(", ")}` : "";
    },
    ack(e) {
      state.pending.delete(e.client_msg_id);
    },
    error(e) {
      if (e.client_msg_id) state.pending.delete(e.client_msg_id);
      showError(str(e.message) || gettext("Something went wrong."));
    },
    pong() {},
  };

  // An SLA clock ran out: red at once (the updated `conversation` entry follows).
  handlers.sla_breach = (e) => {
    const entry = state.queue.get(e.conversation_id);
    if (!entry || !entry.sla || entry.sla.kind !== e.kind) return;
    entry.sla = { ...entry.sla, breached: true };
    renderQueue();
  };

  // ------------------------------------------------------------------ actions
  for (const form of document.querySelectorAll("form[data-frame]")) {
    form.addEventListener("submit", (event) => {
      const frame = { type: form.dataset.frame, conversation_id: conversationId };
      if (frame.type === "assign") frame.agent_id = Number(form.elements.agent_id.value);
      if (send(frame)) event.preventDefault(); // offline: the plain POST form does it
    });
  }

  // Unacked frames go out in the order they were written, once per connection and only after
  // the (re)subscribe: a reply typed while reconnecting never overtakes an earlier one.
  function flushPending() {
    if (!state.ready || !state.subscribed) return;
    for (const item of state.pending.values()) {
      if (item.conn === state.conn) continue;
      if (!send(item.frame)) return;
      item.conn = state.conn;
    }
  }

  function sendText(kind) {
    const text = textBox.value;
    if (!text.trim()) return true;
    const frame = { type: kind, conversation_id: conversationId, client_msg_id: uuid(), text };
    state.pending.set(frame.client_msg_id, { frame, conn: -1 });
    flushPending();
    textBox.value = "";
    hideCanned();
    sendTyping(false);
    return true;
  }

  if (composer) {
    composer.addEventListener("submit", (event) => {
      const kind = event.submitter && event.submitter.value === "note" ? "note" : "reply";
      if (!state.ready) return; // no socket: the plain POST form sends it
      event.preventDefault();
      sendText(kind);
    });
    textBox.addEventListener("keydown", (event) => {
      const list = $("kf-canned");
      if (!list.hidden && (event.key === "Tab" || event.key === "Enter")) {
        event.preventDefault();
        insertCanned(list.firstElementChild && list.firstElementChild.dataset.shortcut);
      } else if (event.key === "Escape") {
        hideCanned();
      } else if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        sendText(event.altKey ? "note" : "reply");
      }
    });
    textBox.addEventListener("input", () => {
      showCanned();
      if (textBox.value) sendTyping(true); else sendTyping(false);
    });
  }

  function sendTyping(on) {
    clearTimeout(state.typingTimer);
    if (on) state.typingTimer = setTimeout(() => sendTyping(false), 3000);
    if (state.typingOn === on && !(on && Date.now() - state.typingSentAt > 4000)) return;
    if (send({ type: "typing", conversation_id: conversationId, on })) {
      state.typingOn = on;
      state.typingSentAt = Date.now();
    }
  }

  // Canned replies: "/" at the start, then the shortcut; Tab or Enter inserts the first match.
  function showCanned() {
    const list = $("kf-canned");
    const match = /^\/([\w-]*)$/.exec(textBox.value);
    if (!match) { hideCanned(); return; }
    const found = state.canned.filter((c) => c.shortcut.startsWith(match[1].toLowerCase())
      || c.title.toLowerCase().includes(match[1].toLowerCase())).slice(0, 8);
    list.replaceChildren(...found.map((c) => el("li", { role: "option", dataset: { shortcut: c.shortcut } },
      el("b", { text: `/${c.shortcut}` }), el("span", { text: ` ${c.title}` }))));
    for (const item of list.children) item.addEventListener("mousedown", (event) => {
      event.preventDefault();
      insertCanned(item.dataset.shortcut);
    });
    list.hidden = found.length === 0;
  }
  function hideCanned() { const list = $("kf-canned"); if (list) list.hidden = true; }
  function insertCanned(shortcut) {
    const canned = state.canned.find((c) => c.shortcut === shortcut);
    if (!canned) return;
    textBox.value = canned.text;
    hideCanned();
    textBox.focus();
  }

  // The customer panel's CRM part, rendered (and escaped) by the server after the page loads:
  // a slow CRM never holds up the conversation.
  async function loadCrm() {
    const panel = $("kf-crm");
    if (!panel) return;
    try {
      const response = await fetch(panel.dataset.src, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      const html = await response.text();
      panel.replaceChildren(...new DOMParser().parseFromString(html, "text/html").body.childNodes);
    } catch (error) {
      panel.replaceChildren(el("p", { class: "kf-crm-error", text: "The CRM panel could not be loaded." }));
    }
  }

  scrollDown(); // the newest lines first in view
  connect();
  loadCrm();
})();
