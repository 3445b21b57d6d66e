/*
 * Kefu chat widget. Embed with one tag, no build step:
 *
 *   <script src="https://kefu.example.com/widget/kefu-widget.js" defer
 *           data-kefu-url="https://kefu.example.com"
 *           data-user-id="crm-123" data-user-hash="<hmac, computed on your server>"></script>
 *
 * or, with an expiring proof that also verifies the e-mail, data-user-jwt="<HS256 JWT signed
 * on your server with WIDGET_JWT_SECRET>" (keep data-user-id = its `sub`).
 *
 * It speaks PROTOCOL.md section 1 (POST /api/widget/session) and section 2 (WebSocket /ws/chat/).
 * Safety rule for this file: text that comes from the network is only ever put into the
 * page with textContent / Text nodes / setAttribute, never innerHTML; links only for
 * http(s) URLs.
 *
 * What survives a reload (localStorage, per Kefu server): the session token, the
 * conversation id, the panel's open state, answered satisfaction surveys, and the outbox of
 * messages the server has not acknowledged yet. The history itself is not cached: after a
 * reload the widget resumes from seq 0, so Postgres stays the one source of truth and the
 * page shows exactly what the server stored.
 */
(() => {
  "use strict";
  if (window.Kefu && window.Kefu.version) return; // the tag was pasted twice: keep the first

  const VERSION = "1.0.0";
  const MAX_TEXT = 4000;
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 30000;

  // ---------------------------------------------------------------- configuration
  const script = document.currentScript || document.querySelector("script[data-kefu-url]");
  const data = (script && script.dataset) || {};
  const scriptUrl = script && script.src ? new URL(script.src, location.href) : null;
  const config = {
    baseUrl: (data.kefuUrl || (scriptUrl ? scriptUrl.origin : location.origin)).replace(/\/+$/, ""),
    userId: data.userId || null,
    userHash: data.userHash || null,
    userJwt: data.userJwt || null,
    name: data.name || null,
    email: data.email || null,
    title: data.title || "Chat with us",
    greeting: data.greeting || "",
    color: /^#[0-9a-f]{3,8}$/i.test(data.color || "") ? data.color : null,
    open: data.open === "true",
  };
  const assetBase = scriptUrl ? new URL(".", scriptUrl).href : `${config.baseUrl}/widget/`;

  // ---------------------------------------------------------------- storage
  // localStorage can be missing or throw (privacy modes, quotas): fall back to memory.
  const PREFIX = `kefu:${config.baseUrl}:`;
  const memory = new Map();
  const store = {
    get(name) {
      try {
        const raw = localStorage.getItem(PREFIX + name);
        return raw == null ? null : JSON.parse(raw);
      } catch {
        return memory.has(name) ? memory.get(name) : null;
      }
    },
    set(name, value) {
      memory.set(name, value);
      try { localStorage.setItem(PREFIX + name, JSON.stringify(value)); } catch { /* memory only */ }
    },
    remove(name) {
      memory.delete(name);
      try { localStorage.removeItem(PREFIX + name); } catch { /* memory only */ }
    },
  };
  const outbox = () => store.get("outbox") || [];
  const outboxRemove = (id) => store.set("outbox", outbox().filter((m) => m.client_msg_id !== id));

  // The host page signed someone else in (or out): nothing of the previous person may show.
  const saved = store.get("session");
  if (saved && (saved.user_id || null) !== config.userId) {
    for (const name of ["session", "conversation", "outbox", "csat"]) store.remove(name);
  }

  // ---------------------------------------------------------------- helpers
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // Non-secure contexts lack randomUUID; build a version 4 UUID by hand.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  /** createElement with attributes; string children become Text nodes, so they stay inert. */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value == null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  function icon(pathData) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", pathData);
    svg.append(path);
    return svg;
  }

  /** An absolute http(s) URL, or null: javascript:, data: and friends never become links. */
  function safeUrl(raw) {
    if (typeof raw !== "string" || !raw.trim()) return null;
    try {
      const url = new URL(raw.trim(), `${config.baseUrl}/`);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch {
      return null;
    }
  }

  const str = (value) => (typeof value === "string" ? value : value == null ? "" : String(value));

  function authorName(message) {
    const a = message.author;
    if (typeof a === "string" && a) return a;
    if (a && typeof a === "object" && typeof a.name === "string" && a.name) return a.name;
    return { assistant: "Assistant", agent: "Support agent" }[message.role] || "";
  }

  // ---------------------------------------------------------------- view
  const host = el("div", { "data-kefu-widget": VERSION });
  host.style.cssText = "all: initial; visibility: hidden"; // shown once the stylesheet loads
  const root = host.attachShadow({ mode: "open" });
  const reveal = () => { host.style.visibility = "visible"; };
  root.append(el("link", { rel: "stylesheet", href: `${assetBase}kefu-widget.css`, onload: reveal, onerror: reveal }));

  const badge = el("span", { class: "kefu-badge", hidden: true });
  const launcher = el("button", {
    class: "kefu-launcher", type: "button", "aria-label": "Open chat", "aria-expanded": "false",
    "aria-controls": "kefu-panel",
  }, icon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"),
  icon("M6 9l6 6 6-6"), badge);
  const status = el("p", { class: "kefu-status", text: "Assistant \u00b7 replies instantly" });
  const humanButton = el("button", { class: "kefu-human", type: "button", text: "Talk to a person" });
  const closeButton = el("button", { class: "kefu-close", type: "button", "aria-label": "Close chat" },
    icon("M6 6l12 12M18 6L6 18"));
  const banner = el("div", { class: "kefu-banner", role: "status", hidden: true });
  const log = el("div", { class: "kefu-log", role: "log", "aria-live": "polite", "aria-label": "Conversation",
    tabindex: "0" });
  const typing = el("div", { class: "kefu-typing", "aria-live": "polite", hidden: true });
  const stopButton = el("button", { class: "kefu-stop", type: "button", hidden: true },
    icon("M7 7h10v10H7z"), "Stop answering");
  const input = el("textarea", { class: "kefu-input", rows: "1", maxlength: String(MAX_TEXT),
    placeholder: "Type your message\u2026", "aria-label": "Message" });
  const sendButton = el("button", { class: "kefu-send", type: "submit", "aria-label": "Send message" },
    icon("M3 20l18-8L3 4v6l12 2-12 2z"));
  const composer = el("form", { class: "kefu-composer" }, input, sendButton);
  const panel = el("section", { class: "kefu-panel", id: "kefu-panel", role: "dialog",
    "aria-label": config.title, hidden: true },
  el("header", { class: "kefu-header" },
    el("div", { class: "kefu-heading" }, el("h2", { class: "kefu-title", text: config.title }), status),
    humanButton, closeButton),
  banner, log, typing, stopButton, composer,
  el("p", { class: "kefu-footer", text: "Powered by Kefu" }));
  const frame = el("div", { class: "kefu" }, panel, launcher);
  if (config.color) frame.style.setProperty("--kefu-accent", config.color);
  root.append(frame);

  if (config.greeting) {
    const greeting = messageItem("assistant", "Assistant", config.greeting);
    greeting.classList.add("kefu-greeting"); // the host page's words, not part of the history
    log.append(greeting);
  }

  function messageItem(role, author, text) {
    const body = el("div", { class: "kefu-text" });
    if (text) body.textContent = text;
    const item = el("div", { class: `kefu-item kefu-from-${role}` },
      author && role !== "customer" && role !== "system" ? el("div", { class: "kefu-author", text: author }) : null,
      el("div", { class: "kefu-bubble" }, body),
      el("div", { class: "kefu-meta" }));
    item.kefuText = body;
    return item;
  }

  function setMeta(item, text, kind) {
    const meta = item.querySelector(".kefu-meta");
    meta.textContent = text || "";
    meta.dataset.kind = kind || "";
  }

  /** Message text with [n] markers linked to citation n (only when its URL is http/https). */
  function renderText(item, text, citations) {
    const node = item.kefuText;
    const list = Array.isArray(citations) ? citations.filter((c) => c && typeof c === "object") : [];
    const byNumber = new Map(list.map((c) => [str(c.n), c]));
    node.replaceChildren();
    for (const part of str(text).split(/(\[\d{1,3}\])/)) {
      const match = /^\[(\d{1,3})\]$/.exec(part);
      const cited = match && byNumber.get(match[1]);
      const href = cited && safeUrl(cited.url);
      if (href) {
        node.append(el("a", { class: "kefu-cite", href, target: "_blank", rel: "noopener noreferrer nofollow",
          title: str(cited.title) || null }, part));
      } else if (part) {
        node.append(part);
      }
    }
    item.querySelector(".kefu-sources")?.remove();
    if (!list.length) return;
    const sources = el("ol", { class: "kefu-sources", "aria-label": "Sources" });
    for (const c of list) {
      const href = safeUrl(c.url);
      const label = str(c.title) || str(c.url) || "Source";
      sources.append(el("li", {}, el("span", { class: "kefu-source-n", text: `[${str(c.n)}]` }), " ",
        href ? el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }, label) : label));
    }
    node.after(sources);
  }

  function systemLine(text, kind) {
    return el("div", { class: `kefu-system${kind ? ` kefu-system-${kind}` : ""}`, text });
  }

  // Durable items go above messages still waiting for their ack, which stay at the bottom.
  function insertHistory(node) {
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    const firstPending = log.querySelector(".kefu-pending");
    log.insertBefore(node, firstPending);
    if (nearBottom || firstPending) scrollToEnd();
  }
  function scrollToEnd() { log.scrollTop = log.scrollHeight; }

  // ---------------------------------------------------------------- state
  const state = {
    session: store.get("session"),
    conversationId: store.get("conversation"),
    lastSeq: 0, // highest seq shown for conversationId; 0 after a reload, so resume replays all
    ws: null,
    ready: false,
    resuming: false,
    connecting: false,
    attempt: 0,
    reconnectTimer: null,
    heartbeatTimer: null,
    lastHeard: 0,
    early: new Map(), // seq -> [event, handler] that arrived before an earlier seq
    sent: new Set(), // client_msg_ids sent on this socket and not acknowledged yet
    messages: new Map(), // message id -> item
    pending: new Map(), // client_msg_id -> item
    tools: new Map(), // call_id -> line
    streams: new Map(), // message id -> text so far, while it is being generated
    ended: new Set(), // message ids whose message_end arrived
    handoff: "bot",
    agent: null,
    closed: false,
    wantHuman: false,
    humanRequested: false,
    typingOn: false,
    typingSentAt: 0,
    typingTimer: null,
    peerTypingTimer: null,
    unread: 0,
    failed: false,
  };

  for (const item of outbox()) renderPending(item);

  // ---------------------------------------------------------------- socket
  function send(frameData) {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frameData));
    return true;
  }

  async function ensureSession() {
    const s = state.session;
    const expiresAt = s && Date.parse(s.expires_at);
    if (s && s.token && !(expiresAt && expiresAt - Date.now() < 60000)) return s;
    const body = {};
    if (config.userJwt) body.user_jwt = config.userJwt;
    if (config.userId) body.user_id = config.userId; // with a JWT, the server checks it equals `sub`
    if (config.userId && !config.userJwt) body.user_hash = config.userHash;
    if (config.name) body.name = config.name;
    if (config.email) body.email = config.email;
    const response = await fetch(`${config.baseUrl}/api/widget/session`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      credentials: "omit",
    });
    if (response.status === 403) {
      state.failed = true;
      showBanner("We couldn't confirm who you are, so the chat is unavailable. Please sign in again.");
      return null;
    }
    if (!response.ok) throw new Error(`session: HTTP ${response.status}`);
    const answer = await response.json();
    if (s && s.customer_id && s.customer_id !== answer.customer_id) forgetConversation();
    state.session = { token: answer.token, customer_id: answer.customer_id, expires_at: answer.expires_at,
      user_id: config.userId };
    store.set("session", state.session);
    return state.session;
  }

  async function connect() {
    if (state.ws || state.connecting || state.failed) return;
    clearTimeout(state.reconnectTimer);
    state.connecting = true;
    try {
      const session = await ensureSession();
      if (!session) return;
      const ws = new WebSocket(`${config.baseUrl.replace(/^http/, "ws")}/ws/chat/`);
      state.ws = ws;
      state.ready = false;
      state.sent = new Set();
      ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: session.token }));
      ws.onmessage = (e) => {
        if (ws !== state.ws) return;
        let event;
        try { event = JSON.parse(e.data); } catch { return; }
        if (event && typeof event === "object") handle(event);
      };
      ws.onclose = (e) => dropSocket(ws, e.code);
    } catch {
      scheduleReconnect(); // the server is down or the session request failed: try again later
    } finally {
      state.connecting = false;
    }
  }

  function dropSocket(ws, code) {
    if (ws !== state.ws) return;
    state.ws = null;
    state.ready = false;
    state.resuming = false;
    clearInterval(state.heartbeatTimer);
    if (code === 4401) { // bad or expired token: the next attempt starts a new session
      state.session = null;
      store.remove("session");
    }
    showBanner(code === 4429 ? "This chat is open in too many tabs. Close one and we'll reconnect."
      : "Connection lost. Reconnecting\u2026");
    scheduleReconnect(code === 4429 ? 5 : 0);
  }

  /** Exponential backoff with full jitter, capped, so a fleet of widgets never reconnects in step. */
  function scheduleReconnect(extraAttempts = 0) {
    clearTimeout(state.reconnectTimer);
    state.attempt = Math.min(state.attempt + 1 + extraAttempts, 20);
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (state.attempt - 1));
    state.reconnectTimer = setTimeout(connect, Math.random() * ceiling);
  }

  function startHeartbeat(seconds) {
    const period = (Number(seconds) > 0 ? Number(seconds) : 25) * 1000;
    clearInterval(state.heartbeatTimer);
    state.heartbeatTimer = setInterval(() => {
      const ws = state.ws;
      if (!ws) return;
      // A socket silent for three periods is dead even if the browser hasn't noticed.
      if (Date.now() - state.lastHeard > 3 * period) {
        dropSocket(ws, 4000);
        ws.close(4000, "heartbeat timeout");
        return;
      }
      send({ type: "ping", ts: Date.now() });
    }, period);
  }

  // ---------------------------------------------------------------- conversation
  function adoptConversation(id) {
    state.conversationId = id;
    state.lastSeq = 0;
    state.early.clear();
    store.set("conversation", id);
  }

  function forgetConversation() {
    state.conversationId = null;
    state.lastSeq = 0;
    state.early.clear();
    state.resuming = false;
    store.remove("conversation");
  }

  function resume() {
    state.resuming = true;
    send({ type: "resume", conversation_id: state.conversationId, last_seq: state.lastSeq });
  }

  /**
   * Exactly-once, in-order display: a durable event shows only as the next seq of our
   * conversation. One that runs ahead waits in `early` while a replay fetches what is missing.
   */
  function handleDurable(event, handler) {
    const id = event.conversation_id;
    if (!state.conversationId && id) adoptConversation(id); // our first message started it
    if (id && id !== state.conversationId) return;
    if (event.seq <= state.lastSeq) return; // shown already (a replay overlapping live events)
    if (event.seq > state.lastSeq + 1) {
      state.early.set(event.seq, [event, handler]);
      if (!state.resuming) resume();
      return;
    }
    applyDurable(event, handler);
    drainEarly();
  }

  function applyDurable(event, handler) {
    state.lastSeq = event.seq;
    handler(event);
  }

  function drainEarly() {
    for (let next = state.early.get(state.lastSeq + 1); next; next = state.early.get(state.lastSeq + 1)) {
      state.early.delete(state.lastSeq + 1);
      applyDurable(...next);
    }
    for (const seq of state.early.keys()) if (seq <= state.lastSeq) state.early.delete(seq);
  }

  function flushOutbox() {
    if (!state.ready || state.resuming) return;
    for (const item of outbox()) {
      // Without a conversation, the first message starts one; the rest wait for its ack.
      if (!state.conversationId && state.sent.size) return;
      if (state.sent.has(item.client_msg_id)) continue;
      const frameData = { type: "message", client_msg_id: item.client_msg_id, text: item.text };
      if (state.conversationId) frameData.conversation_id = state.conversationId;
      if (!send(frameData)) return;
      state.sent.add(item.client_msg_id);
      const pending = state.pending.get(item.client_msg_id);
      if (pending) setMeta(pending, "Sending\u2026", "sending");
    }
  }

  function renderPending(item) {
    const node = messageItem("customer", "", item.text);
    node.classList.add("kefu-pending");
    setMeta(node, "Waiting for connection\u2026", "sending");
    state.pending.set(item.client_msg_id, node);
    log.append(node);
    scrollToEnd();
  }

  function submit() {
    const text = input.value.trim();
    if (!text) return;
    const item = { client_msg_id: uuid(), text: text.slice(0, MAX_TEXT) };
    store.set("outbox", [...outbox(), item]); // before sending: a reload now loses nothing
    renderPending(item);
    input.value = "";
    autoGrow();
    sendTyping(false);
    if (state.ws) flushOutbox();
    else connect();
  }

  function sendTyping(on) {
    clearTimeout(state.typingTimer);
    if (!state.conversationId || state.typingOn === on) return;
    if (!send({ type: "typing", conversation_id: state.conversationId, on })) return;
    state.typingOn = on;
    state.typingSentAt = Date.now();
  }

  // ---------------------------------------------------------------- events
  const handlers = {
    ready(e) {
      state.ready = true;
      state.attempt = 0;
      hideBanner();
      startHeartbeat(e.heartbeat_s);
      // The server names the customer's open conversation. If it isn't ours, ours was closed
      // (a customer has at most one open) and new messages go there: follow it.
      if (e.conversation_id && e.conversation_id !== state.conversationId) {
        if (state.messages.size) insertHistory(systemLine("New conversation"));
        adoptConversation(e.conversation_id);
        state.closed = false;
        state.handoff = "bot";
        updateControls();
      }
      if (state.conversationId) resume();
      else flushOutbox();
    },
    resumed() {
      state.resuming = false;
      // An answer still being generated is announced by a `partial` right after this; one
      // that isn't was lost with its server process: stop showing it as in progress.
      for (const id of state.streams.keys()) {
        const item = state.messages.get(id);
        item.classList.remove("kefu-streaming");
        item.setAttribute("aria-busy", "false");
        item.dataset.state = "interrupted";
      }
      state.streams.clear();
      updateControls();
      // The replay is complete up to now: a hole still left was never stored, so move on.
      while (state.early.size) {
        state.lastSeq = Math.min(...state.early.keys()) - 1;
        drainEarly();
      }
      flushOutbox();
    },
    ack(e) {
      state.sent.delete(e.client_msg_id);
      outboxRemove(e.client_msg_id);
      if (e.conversation_id && e.conversation_id !== state.conversationId) {
        const hadOne = Boolean(state.conversationId);
        adoptConversation(e.conversation_id);
        if (hadOne) { // the old one was closed: show the new one from its start
          insertHistory(systemLine("New conversation"));
          state.closed = false;
          state.handoff = "bot";
          updateControls();
          resume();
        }
      }
      const pending = state.pending.get(e.client_msg_id);
      state.pending.delete(e.client_msg_id);
      if (pending) {
        if (state.messages.has(e.message_id)) {
          pending.remove(); // its `message` event came first and already shows it
        } else {
          pending.classList.remove("kefu-pending");
          setMeta(pending, "");
          state.messages.set(e.message_id, pending);
          pending.remove();
          insertHistory(pending);
        }
      }
      if (state.wantHuman) requestHuman();
      flushOutbox();
    },
    message(e) {
      const m = e.message && typeof e.message === "object" ? e.message : {};
      const role = ["customer", "assistant", "agent", "system"].includes(m.role) ? m.role : "system";
      let item = state.messages.get(m.id);
      if (item && state.streams.has(m.id) && !m.text) return; // still streaming: keep the tokens
      if (!item) {
        if (role === "system") {
          insertHistory(systemLine(str(m.text)));
          return;
        }
        item = messageItem(role, authorName(m), "");
        if (m.created_at) item.title = new Date(m.created_at).toLocaleString();
        state.messages.set(m.id, item);
        insertHistory(item);
        if (role !== "customer") noteUnread();
      }
      if (!state.streams.has(m.id)) item.dataset.state = "final";
      renderText(item, m.text, m.citations);
    },
    token(e) {
      if (!e.message_id || state.ended.has(e.message_id)) return;
      streamText(e.message_id, (state.streams.get(e.message_id) || "") + str(e.text));
    },
    partial(e) {
      if (!e.message_id || state.ended.has(e.message_id)) return;
      streamText(e.message_id, str(e.text));
    },
    message_end(e) {
      state.streams.delete(e.message_id);
      state.ended.add(e.message_id);
      let item = state.messages.get(e.message_id);
      if (!item) {
        item = messageItem("assistant", "Assistant", "");
        state.messages.set(e.message_id, item);
        insertHistory(item);
        noteUnread();
      }
      item.setAttribute("aria-busy", "false");
      item.classList.remove("kefu-streaming");
      item.dataset.state = "final";
      renderText(item, e.text, e.citations);
      setMeta(item, e.stopped ? "Stopped" : "", e.stopped ? "stopped" : "");
      updateControls();
    },
    tool(e) {
      let line = state.tools.get(e.call_id);
      if (!line) {
        line = el("div", { class: "kefu-tool" });
        state.tools.set(e.call_id, line);
        insertHistory(line);
      }
      const labels = { queued: "waiting", running: "working\u2026", progress: "working\u2026", succeeded: "done",
        failed: "didn't work", declined: "declined", awaiting_confirmation: "needs your OK" };
      line.dataset.status = str(e.status);
      line.replaceChildren(el("span", { class: "kefu-tool-icon", "aria-hidden": "true" }),
        el("span", { class: "kefu-tool-text", text: str(e.detail) || `Running ${str(e.name)}` }),
        el("span", { class: "kefu-tool-status", text: labels[e.status] || str(e.status) }));
      if (e.status === "awaiting_confirmation") line.append(confirmButtons(e));
    },
    handoff(e) {
      state.handoff = ["bot", "waiting", "human"].includes(e.state) ? e.state : "bot";
      state.agent = str(e.agent) || null;
      state.wantHuman = false;
      state.humanRequested = false;
      const text = {
        waiting: "We're finding a person to help you. You can keep writing meanwhile.",
        human: `${state.agent || "A support agent"} joined the conversation.`,
        bot: "You're chatting with our assistant again.",
      }[state.handoff];
      insertHistory(systemLine(text, "handoff"));
      updateControls();
    },
    update(e) {
      insertHistory(el("div", { class: "kefu-card", "data-kind": str(e.kind) },
        el("div", { class: "kefu-card-title", text: str(e.title) || "Update" }),
        e.body ? el("p", { class: "kefu-card-body", text: str(e.body) }) : null));
      noteUnread();
    },
    csat_request(e) {
      state.closed = true;
      const conversationId = state.conversationId;
      const answered = (store.get("csat") || []).includes(conversationId);
      const card = el("div", { class: "kefu-card kefu-csat" },
        el("div", { class: "kefu-card-title", text: str(e.question) || "How did we do?" }));
      const thanks = () => card.append(el("p", { class: "kefu-card-body", text: "Thanks for your feedback!" }));
      if (answered) {
        thanks();
      } else {
        const scores = el("div", { class: "kefu-csat-scores", role: "group", "aria-label": "Rating" });
        for (let score = 1; score <= 5; score += 1) {
          scores.append(el("button", { type: "button", class: "kefu-csat-score", "aria-label": `${score} out of 5`,
            text: String(score),
            onclick: () => {
              if (!send({ type: "csat", conversation_id: conversationId, score })) return;
              store.set("csat", [...(store.get("csat") || []), conversationId].slice(-20));
              scores.remove();
              thanks();
            } }));
        }
        card.append(scores);
      }
      insertHistory(card);
      updateControls();
    },
    typing(e) {
      if (e.role === "customer") return;
      clearTimeout(state.peerTypingTimer);
      typing.hidden = !e.on || state.streams.size > 0;
      typing.textContent = e.role === "agent" ? `${state.agent || "Support agent"} is typing\u2026`
        : "Assistant is typing\u2026";
      // A lost "off" must not leave the indicator up forever.
      if (e.on) state.peerTypingTimer = setTimeout(() => { typing.hidden = true; }, 8000);
    },
    error(e) {
      const code = str(e.code);
      if (e.client_msg_id) return messageFailed(e);
      if (state.resuming && (code === "forbidden" || code === "not_found")) {
        // Not (or no longer) ours, e.g. an anonymous session was renewed: start afresh.
        forgetConversation();
        flushOutbox();
        return;
      }
      insertHistory(systemLine(politeError(e), "error"));
    },
    pong() {},
  };

  function handle(event) {
    state.lastHeard = Date.now();
    const handler = Object.hasOwn(handlers, event.type) ? handlers[event.type] : null;
    if (!handler) return;
    if (Number.isInteger(event.seq)) handleDurable(event, handler);
    else handler(event);
  }

  // A write waits for the customer's answer (PROTOCOL.md §2 `tool_confirm`); the next `tool`
  // event of the call replaces the buttons, so a replay after reload shows them only while due.
  function confirmButtons(e) {
    const group = el("span", { class: "kefu-tool-actions", role: "group", "aria-label": "Confirm" });
    const answer = (approve) => {
      if (!send({ type: "tool_confirm", conversation_id: e.conversation_id || state.conversationId,
        call_id: e.call_id, approve })) return;
      group.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    };
    group.append(
      el("button", { type: "button", class: "kefu-tool-approve", text: "Approve", onclick: () => answer(true) }),
      el("button", { type: "button", class: "kefu-tool-decline", text: "Decline", onclick: () => answer(false) }));
    return group;
  }

  function streamText(messageId, text) {
    let item = state.messages.get(messageId);
    if (!item) {
      item = messageItem("assistant", "Assistant", "");
      state.messages.set(messageId, item);
      insertHistory(item);
      noteUnread();
    }
    item.classList.add("kefu-streaming");
    item.setAttribute("aria-busy", "true"); // screen readers read it once, when complete
    item.dataset.state = "streaming";
    state.streams.set(messageId, text);
    item.kefuText.textContent = text;
    typing.hidden = true;
    updateControls();
    if (log.scrollHeight - log.scrollTop - log.clientHeight < 120) scrollToEnd();
  }

  function messageFailed(e) {
    const id = e.client_msg_id;
    const pending = state.pending.get(id);
    state.sent.delete(id);
    if (["rate_limited", "unavailable", "internal"].includes(e.code)) {
      // Worth another try with the same client_msg_id: the server stores it once.
      if (pending) setMeta(pending, "Not sent yet, retrying\u2026", "sending");
      setTimeout(flushOutbox, 2000 + Math.random() * 3000);
      return;
    }
    outboxRemove(id);
    state.pending.delete(id);
    if (e.code === "conflict") {
      // The id was stored before, in the conversation that replaced a closed one: it was
      // delivered, and shows when that conversation is replayed.
      pending?.remove();
      return;
    }
    if (pending) {
      pending.classList.add("kefu-failed");
      setMeta(pending, `Not sent: ${politeError(e)}`, "failed");
    }
  }

  function politeError(e) {
    const known = {
      rate_limited: "You're sending messages quickly. Please wait a moment.",
      unavailable: "The chat is briefly unavailable. We'll keep trying.",
      internal: "Something went wrong on our side. Please try again.",
      forbidden: "That conversation isn't available.",
      not_found: "That conversation wasn't found.",
      too_large: "That message is too long.",
    };
    return known[e.code] || str(e.message) || "Something went wrong. Please try again.";
  }

  function requestHuman() {
    if (!state.conversationId) {
      // request_human needs a conversation: ask after the first message creates one.
      state.wantHuman = true;
      insertHistory(systemLine("Tell us briefly what you need, and we'll bring in a person."));
      input.focus();
      return;
    }
    if (send({ type: "request_human", conversation_id: state.conversationId })) {
      state.wantHuman = false;
      state.humanRequested = true; // until the `handoff` answers it
      updateControls();
    }
  }

  // ---------------------------------------------------------------- chrome
  function updateControls() {
    const busy = state.streams.size > 0;
    stopButton.hidden = !busy;
    humanButton.hidden = state.handoff !== "bot" || state.closed;
    humanButton.disabled = state.humanRequested;
    status.textContent = state.closed ? "Conversation closed \u00b7 write to start a new one"
      : state.handoff === "waiting" ? "Waiting for a person\u2026"
        : state.handoff === "human" ? `Chatting with ${state.agent || "a support agent"}`
          : "Assistant \u00b7 replies instantly";
  }

  function showBanner(text) {
    banner.textContent = text;
    banner.hidden = false;
  }
  function hideBanner() { banner.hidden = true; }

  function noteUnread() {
    if (!panel.hidden || state.resuming) return;
    state.unread += 1;
    badge.textContent = String(state.unread);
    badge.hidden = false;
    launcher.setAttribute("aria-label", `Open chat, ${state.unread} new`);
  }

  function setOpen(open, { focus = true } = {}) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.classList.toggle("kefu-launcher-open", open);
    store.set("open", open);
    if (open) {
      state.unread = 0;
      badge.hidden = true;
      launcher.setAttribute("aria-label", "Close chat");
      if (!state.ws && !state.failed) {
        showBanner("Connecting\u2026");
        connect();
      }
      scrollToEnd();
      if (focus) input.focus();
    } else {
      launcher.setAttribute("aria-label", "Open chat");
    }
  }

  function autoGrow() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 120)}px`;
  }

  launcher.addEventListener("click", () => setOpen(panel.hidden));
  closeButton.addEventListener("click", () => { setOpen(false); launcher.focus(); });
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { setOpen(false); launcher.focus(); }
  });
  humanButton.addEventListener("click", requestHuman);
  stopButton.addEventListener("click", () => {
    if (state.conversationId) send({ type: "stop", conversation_id: state.conversationId });
  });
  composer.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  input.addEventListener("input", () => {
    autoGrow();
    if (!input.value) return sendTyping(false);
    if (!state.typingOn || Date.now() - state.typingSentAt > 4000) {
      state.typingOn = false; // re-announce now and then, so the other side's timeout never fires
      sendTyping(true);
    }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(() => sendTyping(false), 3000);
  });
  // Back online: don't sit out the rest of a long backoff.
  window.addEventListener("online", () => {
    if (!state.ws) { state.attempt = 0; connect(); }
  });

  function mount() {
    document.body.append(host);
    updateControls();
    // A returning customer reconnects at once, so replies that came meanwhile show up.
    if (store.get("open") || config.open) setOpen(true, { focus: false });
    else if (state.session) connect();
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  window.Kefu = Object.freeze({
    version: VERSION,
    open: () => setOpen(true),
    close: () => setOpen(false),
    toggle: () => setOpen(panel.hidden),
  });
})();
