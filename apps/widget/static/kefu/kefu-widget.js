/*
 * Kefu chat widget: the view. Embed with one tag, no build step:
 *
 *   <script src="https://kefu.example.com/widget/kefu-widget.js" defer
 *           data-kefu-url="https://kefu.example.com"
 *           data-user-id="crm-123" data-user-hash="<hmac, computed on your server>"></script>
 *
 * or, with an expiring proof that also verifies the e-mail, data-user-jwt="<HS256 JWT signed
 * on your server with WIDGET_JWT_SECRET>" (keep data-user-id = its `sub`).
 *
 * The protocol (PROTOCOL.md sections 1 and 2: session, socket, reconnects, seq order, the
 * outbox) lives in kefu-client.js, which this file loads from beside itself unless the page
 * loaded it already; this file only renders the client's events and turns clicks into its
 * commands. Safety rule for this file: text that comes from the network is only ever put into
 * the page with textContent / Text nodes / setAttribute, never innerHTML; links only for
 * http(s) URLs.
 *
 * What survives a reload (localStorage, per Kefu server): the client's session, conversation,
 * answered surveys, outbox and thumbs up/down, and the panel's open state. The history itself
 * is not cached: after a reload the widget resumes from seq 0, so Postgres stays the one source
 * of truth and the page shows exactly what the server stored.
 */
(() => {
  "use strict";
  if (window.Kefu && window.Kefu.version) return; // the tag was pasted twice: keep the first

  const VERSION = "1.0.0";
  const MAX_TEXT = 4000;
  const MAX_COMMENT = 1000; // a feedback comment (PROTOCOL.md §2 `feedback`)
  // Material Design thumb icons (Apache 2.0).
  const THUMB_UP = "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06"
    + "L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05"
    + "c.09-.23.14-.47.14-.73v-2z";
  const THUMB_DOWN = "M15 3H6c-.83 0-1.54.5-1.84 1.22l-3.02 7.05c-.09.23-.14.47-.14.73v2c0 1.1.9 2 2 2h6.31"
    + "l-.95 4.57-.03.32c0 .41.17.79.44 1.06L9.83 23l6.59-6.59c.36-.36.58-.86.58-1.41V5c0-1.1-.9-2-2-2z"
    + "m4 0v12h4V3h-4z";

  // ---------------------------------------------------------------- configuration
  // document.currentScript exists only now, while this file runs for the first time.
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
    team: data.team || null,
    // The widget's language: the page's setting (data-lang / data-language, which also fixes the
    // customer's language), else the page's <html lang>, else the browser's.
    language: data.lang || data.language || document.documentElement.lang || navigator.language || "en",
    languageFixed: Boolean(data.lang || data.language),
    title: data.title || null,
    greeting: data.greeting || "",
    color: /^#[0-9a-f]{3,8}$/i.test(data.color || "") ? data.color : null,
    open: data.open === "true",
  };
  const assetBase = scriptUrl ? new URL(".", scriptUrl).href : `${config.baseUrl}/widget/`;

  // The host page's controls work at once; calls made before the view is up wait for it.
  let api = null;
  const waiting = [];
  const call = (name) => () => (api ? api[name]() : waiting.push(name));
  window.Kefu = Object.freeze({ version: VERSION, open: call("open"), close: call("close"), toggle: call("toggle") });

  function loadClient(then) {
    if (window.KefuClient) return then(window.KefuClient);
    const tag = document.createElement("script");
    tag.src = `${assetBase}kefu-client.js`;
    if (script && script.nonce) tag.nonce = script.nonce; // a host CSP with nonces allows it too
    tag.onload = () => then(window.KefuClient);
    (document.head || document.documentElement).append(tag);
  }
  // The strings in the widget's language: Kefu's `djangojs` translations, fetched as JSON (no
  // Django code in this file). Until it answers, or if it fails, the widget speaks English.
  let catalog = {};
  let language = "en";
  function loadCatalog(then) {
    const done = () => then();
    fetch(`${config.baseUrl}/widget/i18n/${encodeURIComponent(config.language)}.json`, { credentials: "omit" })
      .then((r) => (r.ok ? r.json() : null))
      .then((body) => {
        if (body && typeof body.catalog === "object") catalog = body.catalog;
        if (body && typeof body.language === "string") language = body.language;
      })
      .catch(() => {})
      .finally(done);
  }
  function gettext(text) {
    const found = catalog[text];
    return typeof found === "string" && found ? found : text;
  }
  const fill = (format, values) => format.replace(/%\((\w+)\)s/g, (_m, key) => String(values[key]));

  loadCatalog(() => loadClient(start));

  function start(KefuClient) {
    const client = new KefuClient({
      baseUrl: config.baseUrl, userId: config.userId, userHash: config.userHash, userJwt: config.userJwt,
      name: config.name, email: config.email, team: config.team,
      language: config.language, languageFixed: config.languageFixed,
    });
    const title = config.title || gettext("Chat with us");
    const store = client.store; // the same per-server storage, for the panel's open state

    // ---------------------------------------------------------------- helpers
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
      return { assistant: gettext("Assistant"), agent: gettext("Support agent") }[message.role] || "";
    }

    // ---------------------------------------------------------------- view
    const host = el("div", { "data-kefu-widget": VERSION, lang: language });
    host.style.cssText = "all: initial; visibility: hidden"; // shown once the stylesheet loads
    const root = host.attachShadow({ mode: "open" });
    const reveal = () => { host.style.visibility = "visible"; };
    root.append(el("link", { rel: "stylesheet", href: `${assetBase}kefu-widget.css`, onload: reveal, onerror: reveal }));

    const badge = el("span", { class: "kefu-badge", hidden: true });
    const launcher = el("button", {
      class: "kefu-launcher", type: "button", "aria-label": gettext("Open chat"), "aria-expanded": "false",
      "aria-controls": "kefu-panel",
    }, icon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"),
    icon("M6 9l6 6 6-6"), badge);
    const status = el("p", { class: "kefu-status", text: gettext("Assistant \u00b7 replies instantly") });
    const humanButton = el("button", { class: "kefu-human", type: "button", text: gettext("Talk to a person") });
    const closeButton = el("button", { class: "kefu-close", type: "button", "aria-label": gettext("Close chat") },
      icon("M6 6l12 12M18 6L6 18"));
    const banner = el("div", { class: "kefu-banner", role: "status", hidden: true });
    const log = el("div", { class: "kefu-log", role: "log", "aria-live": "polite", "aria-label": gettext("Conversation"),
      tabindex: "0" });
    const typing = el("div", { class: "kefu-typing", "aria-live": "polite", hidden: true });
    const stopButton = el("button", { class: "kefu-stop", type: "button", hidden: true },
      icon("M7 7h10v10H7z"), gettext("Stop answering"));
    const input = el("textarea", { class: "kefu-input", rows: "1", maxlength: String(MAX_TEXT),
      placeholder: gettext("Type your message\u2026"), "aria-label": gettext("Message") });
    const sendButton = el("button", { class: "kefu-send", type: "submit", "aria-label": gettext("Send message") },
      icon("M3 20l18-8L3 4v6l12 2-12 2z"));
    const composer = el("form", { class: "kefu-composer" }, input, sendButton);
    const panel = el("section", { class: "kefu-panel", id: "kefu-panel", role: "dialog",
      "aria-label": title, hidden: true },
    el("header", { class: "kefu-header" },
      el("div", { class: "kefu-heading" }, el("h2", { class: "kefu-title", text: title }), status),
      humanButton, closeButton),
    banner, log, typing, stopButton, composer,
    el("p", { class: "kefu-footer", text: gettext("Powered by Kefu") }));
    const frame = el("div", { class: "kefu" }, panel, launcher);
    if (config.color) frame.style.setProperty("--kefu-accent", config.color);
    root.append(frame);

    if (config.greeting) {
      const greeting = messageItem("assistant", gettext("Assistant"), config.greeting);
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
      const sources = el("ol", { class: "kefu-sources", "aria-label": gettext("Sources") });
      for (const c of list) {
        const href = safeUrl(c.url);
        const label = str(c.title) || str(c.url) || gettext("Source");
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

    // ---------------------------------------------------------------- view state
    const view = {
      messages: new Map(), // message id -> item
      pending: new Map(), // client_msg_id -> item
      tools: new Map(), // call_id -> line
      handoff: "bot",
      agent: null,
      closed: false,
      humanRequested: false,
      suggestions: null, // the suggested topics on offer (one group at most), or null
      typingTimer: null,
      peerTypingTimer: null,
      unread: 0,
    };

    for (const item of client.outbox()) renderPending(item);

    function renderPending(item) {
      const node = messageItem("customer", "", item.text);
      node.classList.add("kefu-pending");
      setMeta(node, gettext("Waiting for connection\u2026"), "sending");
      view.pending.set(item.client_msg_id, node);
      log.append(node);
      scrollToEnd();
    }

    function assistantItem(messageId) {
      let item = view.messages.get(messageId);
      if (!item) {
        item = messageItem("assistant", gettext("Assistant"), "");
        view.messages.set(messageId, item);
        insertHistory(item);
        noteUnread();
      }
      return item;
    }

    function submit() {
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      autoGrow();
      clearTimeout(view.typingTimer);
      client.send(text.slice(0, MAX_TEXT)); // renders through the "queued" event
    }

    function requestHuman() {
      if (client.requestHuman() === "deferred") {
        // request_human needs a conversation: the client asks after the first message creates one.
        insertHistory(systemLine(gettext("Tell us briefly what you need, and we'll bring in a person.")));
        input.focus();
      }
    }

    // ---------------------------------------------------------------- the client's events
    const on = (type, fn) => client.on(type, fn);

    on("queued", (item) => {
      retireSuggestions(); // the customer answered in their own words
      renderPending(item);
    });
    on("sending", ({ client_msg_id: id }) => {
      const pending = view.pending.get(id);
      if (pending) setMeta(pending, gettext("Sending\u2026"), "sending");
    });
    on("ack", ({ client_msg_id: id, message_id: messageId }) => {
      const pending = view.pending.get(id);
      view.pending.delete(id);
      if (!pending) return;
      if (view.messages.has(messageId)) {
        pending.remove(); // its `message` event came first and already shows it
      } else {
        pending.classList.remove("kefu-pending");
        setMeta(pending, "");
        view.messages.set(messageId, pending);
        pending.remove();
        insertHistory(pending);
      }
    });
    on("retrying", ({ client_msg_id: id }) => {
      const pending = view.pending.get(id);
      if (pending) setMeta(pending, gettext("Not sent yet, retrying\u2026"), "sending");
    });
    on("delivered", ({ client_msg_id: id }) => {
      view.pending.get(id)?.remove(); // it shows when the conversation that holds it is replayed
      view.pending.delete(id);
    });
    on("failed", ({ client_msg_id: id, error }) => {
      const pending = view.pending.get(id);
      view.pending.delete(id);
      if (pending) {
        pending.classList.add("kefu-failed");
        setMeta(pending, fill(gettext("Not sent: %(reason)s"), { reason: politeError(error) }), "failed");
      }
    });
    on("human_requested", () => {
      view.humanRequested = true; // until the `handoff` answers it
      updateControls();
    });

    on("ready", () => hideBanner());
    on("disconnected", ({ code }) => {
      showBanner(code === 4429 ? gettext("This chat is open in too many tabs. Close one and we'll reconnect.")
        : gettext("Connection lost. Reconnecting\u2026"));
    });
    on("session_failed", () => {
      showBanner(gettext("We couldn't confirm who you are, so the chat is unavailable. Please sign in again."));
    });
    on("conversation", ({ previous, via }) => {
      if (via === "event") return; // our first message started it: nothing to announce
      retireSuggestions();
      if (via === "ready" ? view.messages.size : previous) insertHistory(systemLine(gettext("New conversation")));
      view.closed = false;
      view.handoff = "bot";
      updateControls();
    });
    on("resumed", ({ interrupted }) => {
      for (const id of interrupted) {
        const item = view.messages.get(id);
        if (!item) continue;
        item.classList.remove("kefu-streaming");
        item.setAttribute("aria-busy", "false");
        item.dataset.state = "interrupted";
      }
      updateControls();
    });

    on("message", (e) => {
      const m = e.message && typeof e.message === "object" ? e.message : {};
      const role = ["customer", "assistant", "agent", "system"].includes(m.role) ? m.role : "system";
      let item = view.messages.get(m.id);
      if (view.suggestions && view.suggestions.dataset.messageId !== str(m.id)) retireSuggestions();
      if (item && e.streaming && !m.text) return; // still streaming: keep the tokens
      if (!item) {
        if (role === "system") {
          insertHistory(systemLine(str(m.text)));
          return;
        }
        item = messageItem(role, authorName(m), "");
        if (m.created_at) item.title = new Date(m.created_at).toLocaleString();
        view.messages.set(m.id, item);
        insertHistory(item);
        if (role !== "customer") noteUnread();
      }
      if (!e.streaming) item.dataset.state = "final";
      renderText(item, m.text, m.citations);
    });
    on("stream", ({ message_id: messageId, text }) => {
      const item = assistantItem(messageId);
      item.classList.add("kefu-streaming");
      item.setAttribute("aria-busy", "true"); // screen readers read it once, when complete
      item.dataset.state = "streaming";
      item.kefuText.textContent = text;
      typing.hidden = true;
      updateControls();
      if (log.scrollHeight - log.scrollTop - log.clientHeight < 120) scrollToEnd();
    });
    on("message_end", (e) => {
      const item = assistantItem(e.message_id);
      item.setAttribute("aria-busy", "false");
      item.classList.remove("kefu-streaming");
      item.dataset.state = "final";
      renderText(item, e.text, e.citations);
      setMeta(item, e.stopped ? gettext("Stopped") : "", e.stopped ? "stopped" : "");
      item.dataset.outcome = str(e.outcome);
      offerSuggestions(item, e);
      if (!e.stopped && e.outcome !== "stopped" && !item.querySelector(".kefu-feedback")) {
        item.append(...feedbackControls(str(e.message_id), e.conversation_id || client.conversationId));
      }
      updateControls();
    });
    on("tool", (e) => {
      let line = view.tools.get(e.call_id);
      if (!line) {
        line = el("div", { class: "kefu-tool" });
        view.tools.set(e.call_id, line);
        insertHistory(line);
      }
      const labels = { queued: gettext("waiting"), running: gettext("working\u2026"), progress: gettext("working\u2026"),
        succeeded: gettext("done"), failed: gettext("didn't work"), declined: gettext("declined"),
        awaiting_confirmation: gettext("needs your OK") };
      line.dataset.status = str(e.status);
      line.replaceChildren(el("span", { class: "kefu-tool-icon", "aria-hidden": "true" }),
        el("span", { class: "kefu-tool-text", text: str(e.detail) || fill(gettext("Running %(name)s"), { name: str(e.name) }) }),
        el("span", { class: "kefu-tool-status", text: labels[e.status] || str(e.status) }));
      if (e.status === "awaiting_confirmation") line.append(confirmButtons(e));
    });
    on("handoff", (e) => {
      retireSuggestions();
      view.handoff = ["bot", "waiting", "human"].includes(e.state) ? e.state : "bot";
      view.agent = str(e.agent) || null;
      view.humanRequested = false;
      const text = {
        waiting: gettext("We're finding a person to help you. You can keep writing meanwhile."),
        human: fill(gettext("%(agent)s joined the conversation."), { agent: view.agent || gettext("A support agent") }),
        bot: gettext("You're chatting with our assistant again."),
      }[view.handoff];
      insertHistory(systemLine(text, "handoff"));
      updateControls();
    });
    on("update", (e) => {
      insertHistory(el("div", { class: "kefu-card", "data-kind": str(e.kind) },
        el("div", { class: "kefu-card-title", text: str(e.title) || gettext("Update") }),
        e.body ? el("p", { class: "kefu-card-body", text: str(e.body) }) : null));
      noteUnread();
    });
    on("csat_request", (e) => {
      retireSuggestions();
      view.closed = true;
      const conversationId = client.conversationId;
      const card = el("div", { class: "kefu-card kefu-csat" },
        el("div", { class: "kefu-card-title", text: str(e.question) || gettext("How did we do?") }));
      const thanks = () => card.append(el("p", { class: "kefu-card-body", text: gettext("Thanks for your feedback!") }));
      if (client.csatAnswered(conversationId)) {
        thanks();
      } else {
        const scores = el("div", { class: "kefu-csat-scores", role: "group", "aria-label": gettext("Rating") });
        for (let score = 1; score <= 5; score += 1) {
          scores.append(el("button", { type: "button", class: "kefu-csat-score", "aria-label": fill(gettext("%(score)s out of 5"), { score }),
            text: String(score),
            onclick: () => {
              if (!client.csat(score, conversationId)) return;
              scores.remove();
              thanks();
            } }));
        }
        card.append(scores);
      }
      insertHistory(card);
      updateControls();
    });
    on("typing", (e) => {
      if (e.role === "customer") return;
      clearTimeout(view.peerTypingTimer);
      typing.hidden = !e.on || client.busy;
      typing.textContent = e.role === "agent"
        ? fill(gettext("%(agent)s is typing\u2026"), { agent: view.agent || gettext("Support agent") })
        : gettext("Assistant is typing\u2026");
      // A lost "off" must not leave the indicator up forever.
      if (e.on) view.peerTypingTimer = setTimeout(() => { typing.hidden = true; }, 8000);
    });
    on("error", ({ event }) => insertHistory(systemLine(politeError(event), "error")));

    // A write waits for the customer's answer (PROTOCOL.md §2 `tool_confirm`); the next `tool`
    // event of the call replaces the buttons, so a replay after reload shows them only while due.
    function confirmButtons(e) {
      const group = el("span", { class: "kefu-tool-actions", role: "group", "aria-label": gettext("Confirm") });
      const answer = (approve) => {
        if (!client.toolConfirm(e.call_id, approve, e.conversation_id || client.conversationId)) return;
        group.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      };
      group.append(
        el("button", { type: "button", class: "kefu-tool-approve", text: gettext("Approve"), onclick: () => answer(true) }),
        el("button", { type: "button", class: "kefu-tool-decline", text: gettext("Decline"), onclick: () => answer(false) }));
      return group;
    }

    // A clarifying answer's topics (PROTOCOL.md §2 `message_end.suggestions`), as buttons under it.
    // A tap sends the title as the customer's own message. They are offered only while the
    // answer is the last word: anything said after it retires them, so a replayed history shows
    // them only under a question still open.
    function offerSuggestions(item, e) {
      const titles = (Array.isArray(e.suggestions) ? e.suggestions : [])
        .map((s) => str(s && typeof s === "object" ? s.title : "").trim()).filter(Boolean).slice(0, 3);
      if (e.outcome !== "clarify" || !titles.length || !isLastMessage(item)) return;
      retireSuggestions();
      const group = el("div", { class: "kefu-suggestions", role: "group", "aria-label": gettext("Suggested topics"),
        "data-message-id": str(e.message_id) });
      for (const title of titles) {
        group.append(el("button", { type: "button", class: "kefu-suggestion", text: title, onclick: () => {
          retireSuggestions();
          client.send(title); // renders through the "queued" event, like a typed message
          input.focus();
        } }));
      }
      item.querySelector(".kefu-bubble").after(group);
      view.suggestions = group;
      if (log.scrollHeight - log.scrollTop - log.clientHeight < 160) scrollToEnd();
    }

    function retireSuggestions() {
      const group = view.suggestions;
      if (!group) return;
      view.suggestions = null;
      const hadFocus = group.contains(root.activeElement);
      group.remove();
      if (hadFocus) input.focus(); // keyboard users keep their place
    }

    function isLastMessage(item) {
      for (let next = item.nextElementSibling; next; next = next.nextElementSibling) {
        if (next.classList.contains("kefu-item")) return false;
      }
      return true;
    }

    // Thumbs up/down on an assistant answer (PROTOCOL.md §2 `feedback`). A thumbs down goes out at
    // once and opens an optional comment; either choice can be changed, and sending again
    // replaces it. The client remembers the choice, so it still shows after a reload.
    function feedbackControls(messageId, conversationId) {
      const thumb = (helpful) => el("button", { type: "button", class: "kefu-thumb",
        "data-helpful": String(helpful), "aria-pressed": "false", "aria-label": helpful ? gettext("Helpful") : gettext("Not helpful"),
        title: helpful ? gettext("Helpful") : gettext("Not helpful") },
      icon(helpful ? THUMB_UP : THUMB_DOWN));
      const up = thumb(true);
      const down = thumb(false);
      const thanks = el("span", { class: "kefu-feedback-note", role: "status" });
      const row = el("div", { class: "kefu-feedback", role: "group", "aria-label": gettext("Was this answer helpful?") },
        up, down, thanks);
      const commentId = `kefu-comment-${messageId}`;
      const comment = el("textarea", { class: "kefu-feedback-input", id: commentId, rows: "2",
        maxlength: String(MAX_COMMENT), placeholder: gettext("e.g. what you were looking for") });
      const count = el("span", { class: "kefu-feedback-count", "aria-live": "polite" });
      const skip = el("button", { type: "button", class: "kefu-feedback-skip", text: gettext("Skip") });
      const form = el("form", { class: "kefu-feedback-form", hidden: true, "aria-label": gettext("Tell us more") },
        el("label", { for: commentId }, `${gettext("What was missing or wrong?")} `,
          el("span", { class: "kefu-optional", text: gettext("(optional)") })), comment,
        el("div", { class: "kefu-feedback-actions" }, count,
          skip, el("button", { type: "submit", class: "kefu-feedback-send", text: gettext("Send") })));

      const show = (given, note = "") => {
        up.setAttribute("aria-pressed", String(given?.helpful === true));
        down.setAttribute("aria-pressed", String(given?.helpful === false));
        thanks.textContent = note;
      };
      const closeForm = (focus) => {
        form.hidden = true;
        if (focus) down.focus();
      };
      up.addEventListener("click", () => {
        client.feedback(messageId, true, "", conversationId);
        closeForm(false);
        show({ helpful: true }, gettext("Thanks!"));
      });
      down.addEventListener("click", () => {
        const given = client.feedbackGiven(messageId);
        if (given?.helpful === false) { // chosen already: open (or close) the comment again
          form.hidden = !form.hidden;
          if (!form.hidden) comment.focus();
          return;
        }
        client.feedback(messageId, false, "", conversationId);
        show({ helpful: false });
        comment.value = "";
        count.textContent = "";
        form.hidden = false;
        comment.focus();
        if (log.scrollHeight - log.scrollTop - log.clientHeight < 200) scrollToEnd();
      });
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        const text = comment.value.trim().slice(0, MAX_COMMENT);
        const before = client.feedbackGiven(messageId)?.comment || "";
        if (text !== before) client.feedback(messageId, false, text, conversationId);
        closeForm(true);
        show({ helpful: false }, text ? gettext("Thanks, that helps us improve.") : gettext("Thanks!"));
      });
      skip.addEventListener("click", () => {
        closeForm(true);
        show({ helpful: false }, gettext("Thanks!"));
      });
      comment.addEventListener("keydown", (e) => {
        if (e.key === "Escape") { e.stopPropagation(); closeForm(true); } // closes the box, not the chat
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
      });
      comment.addEventListener("input", () => {
        const left = MAX_COMMENT - comment.value.length;
        count.textContent = left <= 100 ? fill(gettext("%(count)s left"), { count: left }) : "";
      });
      const given = client.feedbackGiven(messageId);
      show(given);
      if (given?.comment) comment.value = given.comment;
      return [row, form];
    }

    function politeError(e) {
      const known = {
        rate_limited: gettext("You're sending messages quickly. Please wait a moment."),
        unavailable: gettext("The chat is briefly unavailable. We'll keep trying."),
        internal: gettext("Something went wrong on our side. Please try again."),
        forbidden: gettext("That conversation isn't available."),
        not_found: gettext("That conversation wasn't found."),
        too_large: gettext("That message is too long."),
      };
      return known[e.code] || str(e.message) || gettext("Something went wrong. Please try again.");
    }

    // ---------------------------------------------------------------- chrome
    function updateControls() {
      stopButton.hidden = !client.busy;
      humanButton.hidden = view.handoff !== "bot" || view.closed;
      humanButton.disabled = view.humanRequested;
      status.textContent = view.closed ? gettext("Conversation closed \u00b7 write to start a new one")
        : view.handoff === "waiting" ? gettext("Waiting for a person\u2026")
          : view.handoff === "human"
            ? fill(gettext("Chatting with %(agent)s"), { agent: view.agent || gettext("a support agent") })
            : gettext("Assistant \u00b7 replies instantly");
    }

    function showBanner(text) {
      banner.textContent = text;
      banner.hidden = false;
    }
    function hideBanner() { banner.hidden = true; }

    function noteUnread() {
      if (!panel.hidden || client.resuming) return;
      view.unread += 1;
      badge.textContent = String(view.unread);
      badge.hidden = false;
      launcher.setAttribute("aria-label", fill(gettext("Open chat, %(count)s new"), { count: view.unread }));
    }

    function setOpen(open, { focus = true } = {}) {
      panel.hidden = !open;
      launcher.setAttribute("aria-expanded", String(open));
      launcher.classList.toggle("kefu-launcher-open", open);
      store.set("open", open);
      if (open) {
        view.unread = 0;
        badge.hidden = true;
        launcher.setAttribute("aria-label", gettext("Close chat"));
        if (!client.hasSocket && !client.failed) {
          showBanner(gettext("Connecting\u2026"));
          client.connect();
        }
        scrollToEnd();
        if (focus) input.focus();
      } else {
        launcher.setAttribute("aria-label", gettext("Open chat"));
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
    stopButton.addEventListener("click", () => client.stop());
    composer.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
    });
    input.addEventListener("input", () => {
      autoGrow();
      clearTimeout(view.typingTimer);
      if (!input.value) return client.setTyping(false);
      client.setTyping(true);
      view.typingTimer = setTimeout(() => client.setTyping(false), 3000);
    });
    // Back online: don't sit out the rest of a long backoff.
    window.addEventListener("online", () => client.online());

    function mount() {
      document.body.append(host);
      updateControls();
      api = {
        open: () => setOpen(true),
        close: () => setOpen(false),
        toggle: () => setOpen(panel.hidden),
      };
      for (const name of waiting.splice(0)) api[name]();
      // A returning customer reconnects at once, so replies that came meanwhile show up.
      if (store.get("open") || config.open) setOpen(true, { focus: false });
      else if (client.hasSession) client.connect();
    }
    if (document.body) mount();
    else document.addEventListener("DOMContentLoaded", mount);

  }
})();
