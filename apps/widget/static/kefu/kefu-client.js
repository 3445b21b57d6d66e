/*
 * Kefu chat client: PROTOCOL.md section 1 (POST /api/widget/session) and section 2 (WebSocket
 * /ws/chat/), with no DOM. kefu-widget.js renders on top of it; a test page or another UI can
 * use it alone:
 *
 *   const client = new KefuClient({ baseUrl: "https://kefu.example.com" });
 *   client.on("message", (e) => ...);  // durable events: exactly once, in seq order
 *   client.on("stream", ({ message_id, text }) => ...);  // an answer's text so far
 *   client.connect();
 *   client.send("Where is my order?");
 *
 * What it owns: the session (renewed near expiry or after close 4401), the socket with `auth`,
 * reconnects with full-jitter backoff and `resume` from the last seq shown, seq order and
 * de-duplication of durable events, token/partial streams, the outbox of unacknowledged
 * messages (re-sent with the same client_msg_id until their `ack`), and the ping heartbeat.
 * What survives a reload lives in `storage` (localStorage by default, per Kefu server): the
 * session, the conversation id, answered surveys, the outbox and the customer's thumbs up/down
 * (`feedbackGiven(id)`; one made offline goes out after the next resume); the history does not.
 *
 * Events (`client.on(type, fn)` calls fn(detail); the client is also an EventTarget whose
 * CustomEvents carry the same detail):
 *   message, message_end, tool, handoff, update, csat_request, and any other durable type:
 *       the server's event, once each and in seq order (`message` adds `streaming`: true while
 *       its answer is still being generated)
 *   stream {message_id, text}      the whole text so far of an answer being generated
 *   typing, pong                   the server's non-durable events, as they come
 *   ready {event, conversation_id} the socket is authenticated
 *   conversation {conversation_id, previous, via}   the conversation shown changed; `via` is
 *       "ready" (the server names another open one), "ack" (a message started a new one after
 *       the old closed) or "event" (our first message started it)
 *   resumed {interrupted}          a replay ended; `interrupted`: answers that stopped streaming
 *   queued {client_msg_id, text}   a message entered the outbox
 *   sending {client_msg_id}        it went out on the socket
 *   ack {event}                    stored; it left the outbox
 *   retrying / failed / delivered {client_msg_id, error}   the server refused it: retried
 *       later / dropped from the outbox / stored before in the conversation that replaced it
 *   human_requested {conversation_id}   request_human went out
 *   error {event}                  an error not tied to a message
 *   disconnected {code}            the socket closed; a reconnect is scheduled
 *   session_failed {status}        the identity was refused (403): the client stops
 */
((factory) => {
  "use strict";
  const KefuClient = factory();
  if (typeof module === "object" && module.exports) module.exports = KefuClient;
  else if (!globalThis.KefuClient) globalThis.KefuClient = KefuClient;
})(() => {
  "use strict";

  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 30000;
  const MAX_TEXT = 4000;
  const TYPING_REANNOUNCE_MS = 4000; // re-send "on" now and then, so the other side's timeout never fires
  const RETRYABLE = ["rate_limited", "unavailable", "internal"];
  const MAX_FEEDBACK_COMMENT = 1000;
  const FEEDBACK_KEPT = 100; // choices remembered (and shown after a reload), newest last

  /** localStorage under a per-server prefix; falls back to memory when it is missing or throws. */
  function defaultStorage(prefix) {
    const memory = new Map();
    const local = () => globalThis.localStorage; // a getter: privacy modes throw on access
    return {
      get(name) {
        try {
          const raw = local().getItem(prefix + name);
          return raw == null ? null : JSON.parse(raw);
        } catch {
          return memory.has(name) ? memory.get(name) : null;
        }
      },
      set(name, value) {
        memory.set(name, value);
        try { local().setItem(prefix + name, JSON.stringify(value)); } catch { /* memory only */ }
      },
      remove(name) {
        memory.delete(name);
        try { local().removeItem(prefix + name); } catch { /* memory only */ }
      },
    };
  }

  function uuid() {
    const c = globalThis.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    // Non-secure contexts lack randomUUID; build a version 4 UUID by hand.
    const b = c.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  class KefuClient extends EventTarget {
    /**
     * options: baseUrl (required), userId, userHash, userJwt, name, email, team (a team slug
     * that routes the conversations this page starts); storage
     * ({get, set, remove}); WebSocket and fetch (the platform's by default).
     */
    constructor(options) {
      super();
      const o = options || {};
      this.baseUrl = String(o.baseUrl || "").replace(/\/+$/, "");
      this.identity = {
        userId: o.userId || null, userHash: o.userHash || null, userJwt: o.userJwt || null,
        name: o.name || null, email: o.email || null,
      };
      this.team = o.team || null; // per page, so in `auth` rather than in the stored session
      // The host page's language (BCP 47), also per page: `language_fixed` when the page set it
      // explicitly (it then wins over the language the customer writes in).
      this.language = o.language || null;
      this.languageFixed = Boolean(o.languageFixed);
      this.store = o.storage || defaultStorage(`kefu:${this.baseUrl}:`);
      this.WebSocket = o.WebSocket || globalThis.WebSocket;
      this.fetch = o.fetch || ((...args) => globalThis.fetch(...args));

      // The host page signed someone else in (or out): nothing of the previous person may show.
      const saved = this.store.get("session");
      if (saved && (saved.user_id || null) !== this.identity.userId) {
        for (const name of ["session", "conversation", "outbox", "csat", "feedback"]) this.store.remove(name);
      }
      this.session = this.store.get("session");
      this.conversationId = this.store.get("conversation");
      this.lastSeq = 0; // highest seq delivered for conversationId; 0 after a reload, so resume replays all
      this.ws = null;
      this.ready = false;
      this.resuming = false;
      this.connecting = false;
      this.failed = false;
      this.stopped = false; // close() was called: no reconnects until connect()
      this.attempt = 0;
      this.reconnectTimer = null;
      this.heartbeatTimer = null;
      this.lastHeard = 0;
      this.early = new Map(); // seq -> event that arrived before an earlier seq
      this.sent = new Set(); // client_msg_ids sent on this socket and not acknowledged yet
      this.streams = new Map(); // message id -> text so far, while it is being generated
      this.ended = new Set(); // message ids whose message_end arrived
      this.wantHuman = false;
      this.typingOn = false;
      this.typingSentAt = 0;
    }

    // ------------------------------------------------------------ reading
    on(type, fn) {
      const listener = (e) => fn(e.detail);
      this.addEventListener(type, listener);
      return () => this.removeEventListener(type, listener);
    }

    get hasSocket() { return this.ws !== null; }
    get hasSession() { return Boolean(this.session); }
    /** True while an answer is being generated. */
    get busy() { return this.streams.size > 0; }
    isStreaming(messageId) { return this.streams.has(messageId); }
    outbox() { return this.store.get("outbox") || []; }
    csatAnswered(conversationId) { return (this.store.get("csat") || []).includes(conversationId); }

    emit(type, detail) {
      this.dispatchEvent(new CustomEvent(type, { detail }));
    }

    // ------------------------------------------------------------ commands
    /** Queue a customer message: stored in the outbox before it is sent, so a reload loses nothing. */
    send(text) {
      const clean = String(text || "").trim().slice(0, MAX_TEXT);
      if (!clean) return null;
      const item = { client_msg_id: uuid(), text: clean };
      this.store.set("outbox", [...this.outbox(), item]);
      this.emit("queued", item);
      this.setTyping(false);
      if (this.ws) this.flushOutbox();
      else this.connect();
      return item;
    }

    /** "sent", or "deferred" until a first message creates the conversation it needs. */
    requestHuman() {
      if (!this.conversationId) {
        this.wantHuman = true;
        return "deferred";
      }
      if (!this.frame({ type: "request_human", conversation_id: this.conversationId })) return "offline";
      this.wantHuman = false;
      this.emit("human_requested", { conversation_id: this.conversationId });
      return "sent";
    }

    stop() {
      return Boolean(this.conversationId) && this.frame({ type: "stop", conversation_id: this.conversationId });
    }

    toolConfirm(callId, approve, conversationId = this.conversationId) {
      return this.frame({ type: "tool_confirm", conversation_id: conversationId, call_id: callId,
        approve: Boolean(approve) });
    }

    csat(score, conversationId = this.conversationId, comment = undefined) {
      const data = { type: "csat", conversation_id: conversationId, score };
      if (comment) data.comment = String(comment);
      if (!this.frame(data)) return false;
      this.store.set("csat", [...(this.store.get("csat") || []), conversationId].slice(-20));
      return true;
    }

    /**
     * The customer's thumbs up/down on an answer; sending it again replaces it (PROTOCOL.md §2).
     * Remembered before it is sent, so the view shows the choice after a reload, and one made
     * offline goes out after the next resume. True when it went out now.
     */
    feedback(messageId, helpful, comment = undefined, conversationId = this.conversationId) {
      const item = { message_id: String(messageId), conversation_id: conversationId, helpful: Boolean(helpful),
        comment: String(comment || "").trim().slice(0, MAX_FEEDBACK_COMMENT), sent: false };
      const given = (this.store.get("feedback") || []).filter((f) => f.message_id !== item.message_id);
      this.store.set("feedback", [...given, item].slice(-FEEDBACK_KEPT));
      return this.sendFeedback(item);
    }

    /** {helpful, comment} the customer chose for an answer, or null. */
    feedbackGiven(messageId) {
      const found = (this.store.get("feedback") || []).find((f) => f.message_id === String(messageId));
      return found ? { helpful: found.helpful, comment: found.comment } : null;
    }

    sendFeedback(item) {
      if (!item.conversation_id || !this.ready || this.resuming) return false;
      const data = { type: "feedback", conversation_id: item.conversation_id, message_id: item.message_id,
        helpful: item.helpful };
      if (item.comment) data.comment = item.comment;
      if (!this.frame(data)) return false;
      const given = this.store.get("feedback") || [];
      const same = (f) => f.message_id === item.message_id && f.helpful === item.helpful
        && f.comment === item.comment;
      for (const f of given) if (same(f)) f.sent = true;
      this.store.set("feedback", given);
      return true;
    }

    /** After a resume: what the customer chose offline in this conversation (another one may be gone). */
    flushFeedback() {
      for (const item of this.store.get("feedback") || []) {
        if (!item.sent && item.conversation_id === this.conversationId) this.sendFeedback(item);
      }
    }

    /** The customer is (not) typing; repeated calls send only changes and a periodic re-announce. */
    setTyping(on) {
      if (!this.conversationId) return false;
      const due = on && Date.now() - this.typingSentAt > TYPING_REANNOUNCE_MS;
      if (this.typingOn === on && !due) return false;
      if (!this.frame({ type: "typing", conversation_id: this.conversationId, on })) return false;
      this.typingOn = on;
      this.typingSentAt = Date.now();
      return true;
    }

    /** Send one frame now; false when there is no open socket. */
    frame(data) {
      const ws = this.ws;
      if (!ws || ws.readyState !== 1) return false; // 1: OPEN
      ws.send(JSON.stringify(data));
      return true;
    }

    // ------------------------------------------------------------ connection
    async connect() {
      this.stopped = false;
      if (this.ws || this.connecting || this.failed) return;
      clearTimeout(this.reconnectTimer);
      this.connecting = true;
      try {
        const session = await this.ensureSession();
        if (!session || this.stopped) return;
        const ws = new this.WebSocket(`${this.baseUrl.replace(/^http/, "ws")}/ws/chat/`);
        this.ws = ws;
        this.ready = false;
        this.sent = new Set();
        const auth = { type: "auth", token: session.token, ...(this.team ? { team: this.team } : {}),
          ...(this.language ? { language: this.language, language_fixed: this.languageFixed } : {}) };
        ws.onopen = () => ws.send(JSON.stringify(auth));
        ws.onmessage = (e) => {
          if (ws !== this.ws) return;
          let event;
          try { event = JSON.parse(e.data); } catch { return; }
          if (event && typeof event === "object") this.handle(event);
        };
        ws.onclose = (e) => this.dropSocket(ws, e.code);
      } catch {
        this.scheduleReconnect(); // the server is down or the session request failed: try again later
      } finally {
        this.connecting = false;
      }
    }

    /** Close the socket and stay closed until connect(). */
    close() {
      this.stopped = true;
      clearTimeout(this.reconnectTimer);
      const ws = this.ws;
      if (ws) {
        this.dropSocket(ws, 1000);
        ws.close(1000, "closed by the client");
      }
    }

    /** Drop the socket and open a new one at once (back online, or a socket that went quiet). */
    reconnect() {
      const ws = this.ws;
      if (ws) {
        this.dropSocket(ws, 4000);
        ws.close(4000, "reconnect");
      }
      this.attempt = 0;
      this.connect();
    }

    /** The network came back: don't sit out the rest of a long backoff. */
    online() {
      if (!this.ws && !this.stopped) {
        this.attempt = 0;
        this.connect();
      }
    }

    async ensureSession() {
      const s = this.session;
      const expiresAt = s && Date.parse(s.expires_at);
      if (s && s.token && !(expiresAt && expiresAt - Date.now() < 60000)) return s;
      const id = this.identity;
      const body = {};
      if (id.userJwt) body.user_jwt = id.userJwt;
      if (id.userId) body.user_id = id.userId; // with a JWT, the server checks it equals `sub`
      if (id.userId && !id.userJwt) body.user_hash = id.userHash;
      if (id.name) body.name = id.name;
      if (id.email) body.email = id.email;
      const response = await this.fetch(`${this.baseUrl}/api/widget/session`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        credentials: "omit",
      });
      if (response.status === 403) {
        this.failed = true;
        this.emit("session_failed", { status: response.status });
        return null;
      }
      if (!response.ok) throw new Error(`session: HTTP ${response.status}`);
      const answer = await response.json();
      if (s && s.customer_id && s.customer_id !== answer.customer_id) this.forgetConversation();
      this.session = { token: answer.token, customer_id: answer.customer_id, expires_at: answer.expires_at,
        user_id: id.userId };
      this.store.set("session", this.session);
      return this.session;
    }

    dropSocket(ws, code) {
      if (ws !== this.ws) return;
      this.ws = null;
      this.ready = false;
      this.resuming = false;
      clearInterval(this.heartbeatTimer);
      if (code === 4401) { // bad or expired token: the next attempt starts a new session
        this.session = null;
        this.store.remove("session");
      }
      this.emit("disconnected", { code });
      if (!this.stopped) this.scheduleReconnect(code === 4429 ? 5 : 0);
    }

    /** Exponential backoff with full jitter, capped, so a fleet of widgets never reconnects in step. */
    scheduleReconnect(extraAttempts = 0) {
      clearTimeout(this.reconnectTimer);
      this.attempt = Math.min(this.attempt + 1 + extraAttempts, 20);
      const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (this.attempt - 1));
      this.reconnectTimer = setTimeout(() => this.connect(), Math.random() * ceiling);
    }

    startHeartbeat(seconds) {
      const period = (Number(seconds) > 0 ? Number(seconds) : 25) * 1000;
      clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = setInterval(() => {
        const ws = this.ws;
        if (!ws) return;
        // A socket silent for three periods is dead even if the browser hasn't noticed.
        if (Date.now() - this.lastHeard > 3 * period) {
          this.dropSocket(ws, 4000);
          ws.close(4000, "heartbeat timeout");
          return;
        }
        this.frame({ type: "ping", ts: Date.now() });
      }, period);
    }

    // ------------------------------------------------------------ conversation
    adoptConversation(id, via) {
      const previous = this.conversationId;
      this.conversationId = id;
      this.lastSeq = 0;
      this.early.clear();
      this.store.set("conversation", id);
      this.emit("conversation", { conversation_id: id, previous, via });
    }

    forgetConversation() {
      this.conversationId = null;
      this.lastSeq = 0;
      this.early.clear();
      this.resuming = false;
      this.store.remove("conversation");
    }

    resume() {
      this.resuming = true;
      this.frame({ type: "resume", conversation_id: this.conversationId, last_seq: this.lastSeq });
    }

    flushOutbox() {
      if (!this.ready || this.resuming) return;
      for (const item of this.outbox()) {
        // Without a conversation, the first message starts one; the rest wait for its ack.
        if (!this.conversationId && this.sent.size) return;
        if (this.sent.has(item.client_msg_id)) continue;
        const data = { type: "message", client_msg_id: item.client_msg_id, text: item.text };
        if (this.conversationId) data.conversation_id = this.conversationId;
        if (!this.frame(data)) return;
        this.sent.add(item.client_msg_id);
        this.emit("sending", { client_msg_id: item.client_msg_id });
      }
    }

    outboxRemove(id) {
      this.store.set("outbox", this.outbox().filter((m) => m.client_msg_id !== id));
    }

    // ------------------------------------------------------------ events in
    handle(event) {
      this.lastHeard = Date.now();
      if (typeof event.type !== "string") return;
      // `ack` carries the seq of the stored message but is not durable itself: the `message`
      // event with that seq is, and the view matches the two by message id in either order.
      if (Object.hasOwn(this.control, event.type)) this.control[event.type].call(this, event);
      else if (Number.isInteger(event.seq)) this.handleDurable(event);
      else this.emit(event.type, event); // typing, pong, and whatever a newer server adds
    }

    /**
     * Exactly-once, in-order delivery: a durable event goes out only as the next seq of our
     * conversation. One that runs ahead waits in `early` while a replay fetches what is missing.
     */
    handleDurable(event) {
      const id = event.conversation_id;
      if (!this.conversationId && id) this.adoptConversation(id, "event"); // our first message started it
      if (id && id !== this.conversationId) return;
      if (event.seq <= this.lastSeq) return; // delivered already (a replay overlapping live events)
      if (event.seq > this.lastSeq + 1) {
        this.early.set(event.seq, event);
        if (!this.resuming) this.resume();
        return;
      }
      this.applyDurable(event);
      this.drainEarly();
    }

    applyDurable(event) {
      this.lastSeq = event.seq;
      if (event.type === "message_end") {
        this.streams.delete(event.message_id);
        this.ended.add(event.message_id);
      }
      if (event.type === "handoff") this.wantHuman = false; // answered, either way
      if (event.type === "message") {
        const m = event.message && typeof event.message === "object" ? event.message : {};
        this.emit("message", { ...event, streaming: this.streams.has(m.id) });
        return;
      }
      this.emit(event.type, event);
    }

    drainEarly() {
      for (let next = this.early.get(this.lastSeq + 1); next; next = this.early.get(this.lastSeq + 1)) {
        this.early.delete(this.lastSeq + 1);
        this.applyDurable(next);
      }
      for (const seq of this.early.keys()) if (seq <= this.lastSeq) this.early.delete(seq);
    }

    stream(messageId, text) {
      this.streams.set(messageId, text);
      this.emit("stream", { message_id: messageId, text });
    }
  }

  // Non-durable events the client acts on itself (`this` is the client).
  KefuClient.prototype.control = {
    ready(e) {
      this.ready = true;
      this.attempt = 0;
      this.startHeartbeat(e.heartbeat_s);
      this.emit("ready", { event: e, conversation_id: e.conversation_id || null });
      // The server names the customer's open conversation. If it isn't ours, ours was closed
      // (a customer has at most one open) and new messages go there: follow it.
      if (e.conversation_id && e.conversation_id !== this.conversationId) {
        this.adoptConversation(e.conversation_id, "ready");
      }
      if (this.conversationId) this.resume();
      else this.flushOutbox();
    },
    resumed() {
      this.resuming = false;
      // An answer still being generated is announced by a `partial` right after this; one
      // that isn't was lost with its server process: stop showing it as in progress.
      const interrupted = [...this.streams.keys()];
      this.streams.clear();
      this.emit("resumed", { interrupted });
      // The replay is complete up to now: a hole still left was never stored, so move on.
      while (this.early.size) {
        this.lastSeq = Math.min(...this.early.keys()) - 1;
        this.drainEarly();
      }
      this.flushOutbox();
      this.flushFeedback();
    },
    ack(e) {
      this.sent.delete(e.client_msg_id);
      this.outboxRemove(e.client_msg_id);
      if (e.conversation_id && e.conversation_id !== this.conversationId) {
        const hadOne = Boolean(this.conversationId);
        this.adoptConversation(e.conversation_id, hadOne ? "ack" : "event");
        if (hadOne) this.resume(); // the old one was closed: show the new one from its start
      }
      this.emit("ack", { event: e, client_msg_id: e.client_msg_id, message_id: e.message_id });
      if (this.wantHuman) this.requestHuman();
      this.flushOutbox();
    },
    token(e) {
      if (!e.message_id || this.ended.has(e.message_id)) return;
      this.stream(e.message_id, (this.streams.get(e.message_id) || "") + String(e.text ?? ""));
    },
    partial(e) {
      if (!e.message_id || this.ended.has(e.message_id)) return;
      this.stream(e.message_id, String(e.text ?? ""));
    },
    error(e) {
      const code = String(e.code ?? "");
      const id = e.client_msg_id;
      if (id) {
        this.sent.delete(id);
        if (RETRYABLE.includes(code)) {
          // Worth another try with the same client_msg_id: the server stores it once.
          setTimeout(() => this.flushOutbox(), 2000 + Math.random() * 3000);
          this.emit("retrying", { client_msg_id: id, error: e });
          return;
        }
        this.outboxRemove(id);
        // conflict: the id was stored before, in the conversation that replaced a closed one:
        // it was delivered, and shows when that conversation is replayed.
        this.emit(code === "conflict" ? "delivered" : "failed", { client_msg_id: id, error: e });
        return;
      }
      if (this.resuming && (code === "forbidden" || code === "not_found")) {
        // Not (or no longer) ours, e.g. an anonymous session was renewed: start afresh.
        this.forgetConversation();
        this.flushOutbox();
        return;
      }
      this.emit("error", { event: e });
    },
  };

  KefuClient.MAX_TEXT = MAX_TEXT;
  return KefuClient;
});
