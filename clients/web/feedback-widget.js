/*! feedback-widget | Apache-2.0 | docs/WIDGET.md */
// <feedback-widget token="..." endpoint="https://api.example.com">: thumbs up / down, an optional score
// and comment on one AI response, sent with the response's feedback token. No dependency and no build
// step: it runs as a classic or a module script, loaded from the API (GET /v1/widget.js), a file or a CDN.
"use strict";

(() => {
  const TAG = "feedback-widget";
  if (!window.customElements || customElements.get(TAG)) return;

  // A classic script knows where it came from: its origin is the endpoint when the element names none.
  // A module script does not (currentScript is null), so the page's origin is.
  const script = document.currentScript;
  const DEFAULT_ENDPOINT = script && script.src ? new URL("/", script.src).href : location.origin + "/";

  const LABELS = {
    group: "Rate this response",
    good: "Good response",
    bad: "Bad response",
    score: "Score",
    comment: "Comment",
    send: "Send",
    sending: "Saving…",
    saved: "Thanks for your feedback.",
    retracted: "Your feedback was removed.",
    expired: "This feedback link has expired. Reload the page to rate this response.",
    error: "Your feedback could not be saved. Please try again.",
  };
  const LABEL_ATTRIBUTES = Object.keys(LABELS).map((name) => "label-" + name);

  // Failures worth another try: the network, throttling, and the server's transient errors.
  const RETRY_STATUSES = [0, 429, 500, 502, 503, 504];
  const RETRIES = 3;
  const RETRY_BASE_MS = 400;
  const RETRY_CAP_MS = 8000;

  const CSS = `
:host{display:block;font:inherit;color:var(--feedback-color,inherit)}
:host([hidden]){display:none}
[part~=container]{display:flex;flex-wrap:wrap;align-items:center;gap:var(--feedback-gap,.4rem)}
button{font:inherit;color:inherit;cursor:pointer;display:inline-flex;align-items:center;justify-content:center;
min-width:2.25rem;min-height:2.25rem;padding:.25rem .6rem;border:1px solid var(--feedback-border,#6e7781);
border-radius:var(--feedback-radius,.4rem);background:var(--feedback-background,transparent)}
[part~=vote][aria-pressed=true]{background:var(--feedback-accent,#0b5cd5);border-color:var(--feedback-accent,#0b5cd5);
color:var(--feedback-accent-text,#fff)}
button:hover{border-color:var(--feedback-accent,#0b5cd5)}
button[aria-disabled=true]{cursor:default;opacity:.6}
button:focus-visible,textarea:focus-visible,input:focus-visible{outline:3px solid var(--feedback-focus,#b35c00);
outline-offset:2px}
svg{width:1.25em;height:1.25em;fill:currentColor}
[part~=bad] svg{transform:rotate(180deg)}
form{flex-basis:100%;display:grid;gap:.35rem;justify-items:start}
form[hidden],label[hidden]{display:none}
label{display:grid;gap:.2rem;width:100%}
textarea,input{font:inherit;color:inherit;box-sizing:border-box;padding:.3rem .4rem;
border:1px solid var(--feedback-border,#6e7781);border-radius:var(--feedback-radius,.4rem);
background:var(--feedback-input-background,transparent)}
textarea{width:100%;resize:vertical}
input{width:6em}
[part~=status]{flex-basis:100%;margin:0;font-size:.875em}
[part~=status][data-kind=error]{color:var(--feedback-error,#b3261e)}`;

  let sharedSheet = null;
  function styleSheet() {
    if (sharedSheet === null && "adoptedStyleSheets" in Document.prototype) {
      // A constructed sheet needs no <style> element, so pages with a strict style-src need not allow one.
      sharedSheet = new CSSStyleSheet();
      sharedSheet.replaceSync(CSS);
    }
    return sharedSheet;
  }

  // Elements are built with the DOM API (no innerHTML), so pages enforcing Trusted Types can use it too.
  function h(tag, attributes, ...children) {
    const svg = tag === "svg" || tag === "path";
    const element = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) element.setAttribute(name, value);
    element.append(...children);
    return element;
  }

  function thumb() {
    return h(
      "svg",
      {viewBox: "0 0 24 24", "aria-hidden": "true", focusable: "false"},
      h("path", {d: "M2 10h4v11H2zm6 11h9.2a2 2 0 0 0 2-1.6l1.5-7.2A2 2 0 0 0 18.8 10H14l.8-4.1A2 2 0 0 0 11.3 4L8 9.4z"}),
    );
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function retryDelay(attempt, retryAfter) {
    const asked = Number(retryAfter);
    if (retryAfter && Number.isFinite(asked) && asked >= 0) return Math.min(asked * 1000, RETRY_CAP_MS);
    const backoff = Math.min(RETRY_BASE_MS * 2 ** attempt, RETRY_CAP_MS);
    return backoff / 2 + Math.random() * (backoff / 2); // jitter: many widgets must not retry in step
  }

  class FeedbackError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function errorOf(response) {
    let error = {};
    try {
      error = (await response.json()).error || {};
    } catch (ignored) {
      // API Gateway's own errors are {"message": ...}; a proxy's may not be JSON at all.
    }
    return new FeedbackError(response.status, error.code || "http_" + response.status, error.message || response.statusText);
  }

  class FeedbackWidget extends HTMLElement {
    static get observedAttributes() {
      return ["token", "endpoint", "user-id", "score", "score-min", "score-max", "no-comment", ...LABEL_ATTRIBUTES];
    }

    constructor() {
      super();
      this._labels = {};
      this._record = null;
      this._loaded = false;
      this._busy = false;
      this._expired = false;
      this._generation = 0;
      this._observer = null;
      this._shadow = this.attachShadow({mode: "open"});
      this._build();
    }

    // ----------------------------------------------------------------------------------- properties

    get token() {
      return this.getAttribute("token") || "";
    }
    set token(value) {
      this._reflect("token", value);
    }
    get endpoint() {
      return this.getAttribute("endpoint") || DEFAULT_ENDPOINT;
    }
    set endpoint(value) {
      this._reflect("endpoint", value);
    }
    get userId() {
      return this.getAttribute("user-id") || "";
    }
    set userId(value) {
      this._reflect("user-id", value);
    }
    _reflect(attribute, value) {
      if (value == null || value === "") this.removeAttribute(attribute);
      else this.setAttribute(attribute, String(value));
    }
    /** Labels to use instead of the defaults, e.g. {good: "Bonne réponse"}; label-* attributes win. */
    get labels() {
      return {...this._labels};
    }
    set labels(value) {
      this._labels = {...(value || {})};
      this._update();
    }
    /** The stored feedback (as GET /v1/feedback/me returns it), or null. */
    get record() {
      return this._record;
    }

    label(name) {
      return this.getAttribute("label-" + name) || this._labels[name] || FeedbackWidget.labels[name] || LABELS[name];
    }

    // ------------------------------------------------------------------------------------ lifecycle

    connectedCallback() {
      // Frameworks may set properties before the element is defined: move them onto the accessors.
      for (const name of ["token", "endpoint", "userId", "labels"]) {
        if (Object.prototype.hasOwnProperty.call(this, name)) {
          const value = this[name];
          delete this[name];
          this[name] = value;
        }
      }
      this._update();
      this._loadWhenVisible();
    }

    disconnectedCallback() {
      this._stopWatching();
    }

    attributeChangedCallback(name, previous, value) {
      if (previous === value) return;
      if (name === "token" || name === "endpoint" || name === "user-id") {
        // Another response, or another user: what was loaded no longer applies.
        this._generation += 1;
        this._record = null;
        this._loaded = false;
        this._expired = false;
        this._busy = false;
        this._say("");
        if (this.isConnected) this._loadWhenVisible();
      }
      this._update();
    }

    // ------------------------------------------------------------------------------------- the DOM

    _build() {
      const sheet = styleSheet();
      if (sheet) this._shadow.adoptedStyleSheets = [sheet];
      else this._shadow.append(h("style", {}, CSS));
      this._good = h("button", {type: "button", part: "button vote good", "aria-pressed": "false"}, thumb());
      this._bad = h("button", {type: "button", part: "button vote bad", "aria-pressed": "false"}, thumb());
      this._scoreText = h("span");
      this._score = h("input", {type: "number", part: "score", step: "1", inputmode: "numeric"});
      this._scoreField = h("label", {part: "field score-field"}, this._scoreText, this._score);
      this._commentText = h("span");
      this._comment = h("textarea", {part: "comment", rows: "2", maxlength: "5000"});
      this._commentField = h("label", {part: "field comment-field"}, this._commentText, this._comment);
      this._send = h("button", {type: "submit", part: "button send"});
      this._form = h("form", {part: "panel", hidden: ""}, this._scoreField, this._commentField, this._send);
      this._status = h("p", {part: "status", role: "status", "aria-live": "polite"});
      this._group = h(
        "div",
        {part: "container", role: "group", "aria-busy": "false"},
        this._good,
        this._bad,
        this._form,
        this._status,
      );
      this._shadow.append(this._group);
      this._good.addEventListener("click", () => this._vote("positive"));
      this._bad.addEventListener("click", () => this._vote("negative"));
      this._form.addEventListener("submit", (event) => {
        event.preventDefault();
        this._sendDetails();
      });
    }

    _update() {
      const outcome = this._record && this._record.outcome;
      const usable = Boolean(this.token) && !this._expired;
      this._group.setAttribute("aria-label", this.label("group"));
      this._group.setAttribute("aria-busy", String(this._busy));
      for (const [button, value, name] of [
        [this._good, "positive", "good"],
        [this._bad, "negative", "bad"],
      ]) {
        button.setAttribute("aria-label", this.label(name));
        button.title = this.label(name);
        button.setAttribute("aria-pressed", String(outcome === value));
        button.setAttribute("aria-disabled", String(!usable || this._busy));
      }
      const withScore = this.hasAttribute("score");
      const withComment = !this.hasAttribute("no-comment");
      this._scoreField.hidden = !withScore;
      this._score.min = this.getAttribute("score-min") || "1";
      this._score.max = this.getAttribute("score-max") || "5";
      this._commentField.hidden = !withComment;
      this._scoreText.textContent = this.label("score");
      this._commentText.textContent = this.label("comment");
      this._send.textContent = this.label("send");
      this._send.setAttribute("aria-disabled", String(this._busy));
      // The details open once there is a vote to attach them to.
      this._form.hidden = !(usable && outcome && (withScore || withComment));
    }

    _say(message, kind) {
      this._status.textContent = message;
      if (kind) this._status.dataset.kind = kind;
      else delete this._status.dataset.kind;
    }

    _emit(type, detail) {
      this.dispatchEvent(new CustomEvent(type, {detail, bubbles: true, composed: true}));
    }

    _setBusy(busy) {
      this._busy = busy;
      this._update();
    }

    // ---------------------------------------------------------------------------- loading on sight

    _loadWhenVisible() {
      this._stopWatching();
      if (this._loaded || !this.token) return;
      if (!("IntersectionObserver" in window)) {
        this._load();
        return;
      }
      // No request until the element is on screen: a long chat costs nothing for answers never seen.
      this._observer = new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) {
          this._stopWatching();
          this._load();
        }
      });
      this._observer.observe(this);
    }

    _stopWatching() {
      if (this._observer) this._observer.disconnect();
      this._observer = null;
    }

    async _load() {
      const generation = this._generation;
      this._setBusy(true);
      try {
        const response = await this._request("GET");
        if (generation !== this._generation) return;
        if (response.status === 404) this._record = null;
        else if (response.ok) this._record = await response.json();
        else throw await errorOf(response);
        this._loaded = true;
        if (this._record) {
          this._comment.value = this._record.comment || "";
          this._score.value = this._record.score == null ? "" : String(this._record.score);
        }
        this._emit("feedback-loaded", {record: this._record});
      } catch (error) {
        if (generation === this._generation) this._failed(error);
      } finally {
        if (generation === this._generation) this._setBusy(false);
      }
    }

    // -------------------------------------------------------------------------------- user actions

    _vote(outcome) {
      if (this._busy || this._expired || !this.token) return;
      if (this._record && this._record.outcome === outcome) this._retract();
      else this._submit({outcome});
    }

    _sendDetails() {
      if (this._busy || this._expired || !this._record) return;
      const fields = {outcome: this._record.outcome};
      if (!this._commentField.hidden) fields.comment = this._comment.value.trim() || null;
      if (!this._scoreField.hidden && this._score.value !== "") fields.score = Number(this._score.value);
      this._submit(fields);
    }

    async _submit(fields) {
      const generation = this._generation;
      const body = this.userId ? {...fields, user_id: this.userId} : fields;
      this._setBusy(true);
      this._say(this.label("sending"));
      try {
        const response = await this._request("POST", body);
        if (generation !== this._generation) return;
        if (!response.ok) throw await errorOf(response);
        const created = !this._record;
        this._record = await response.json();
        this._say(this.label("saved"));
        this._emit("feedback-submitted", {record: this._record, created});
      } catch (error) {
        if (generation === this._generation) this._failed(error);
      } finally {
        if (generation === this._generation) this._setBusy(false);
      }
    }

    async _retract() {
      const generation = this._generation;
      const previous = this._record;
      this._setBusy(true);
      this._say(this.label("sending"));
      try {
        const response = await this._request("DELETE");
        if (generation !== this._generation) return;
        // 404: already gone (retracted elsewhere, or expired): the state the user asked for.
        if (!response.ok && response.status !== 404) throw await errorOf(response);
        this._record = null;
        this._comment.value = "";
        this._score.value = "";
        this._say(this.label("retracted"));
        this._emit("feedback-retracted", {previous});
      } catch (error) {
        if (generation === this._generation) this._failed(error);
      } finally {
        if (generation === this._generation) this._setBusy(false);
      }
    }

    _failed(error) {
      const status = error instanceof FeedbackError ? error.status : 0;
      const code = error instanceof FeedbackError ? error.code : "network_error";
      // 401: the token expired (or was never valid). Another try cannot help: the page must get a new one.
      this._expired = status === 401;
      this._say(this.label(this._expired ? "expired" : "error"), "error");
      this._emit("feedback-error", {status, code, message: String(error && error.message)});
    }

    // ---------------------------------------------------------------------------------- the network

    async _request(method, body) {
      const base = new URL(this.endpoint.replace(/\/*$/, "/"), document.baseURI);
      const url = new URL(method === "POST" ? "v1/feedback" : "v1/feedback/me", base);
      if (method !== "POST" && this.userId) url.searchParams.set("user_id", this.userId);
      const headers = {"x-feedback-token": this.token};
      if (body) headers["content-type"] = "application/json";
      const init = {method, headers, body: body ? JSON.stringify(body) : undefined, credentials: "omit", cache: "no-store"};
      for (let attempt = 0; ; attempt += 1) {
        let response = null;
        try {
          response = await fetch(url, init);
        } catch (error) {
          if (attempt >= RETRIES) throw new FeedbackError(0, "network_error", String(error && error.message));
        }
        const status = response ? response.status : 0;
        if (attempt >= RETRIES || !RETRY_STATUSES.includes(status) || (await this._final(response))) {
          return response;
        }
        await sleep(retryDelay(attempt, response && response.headers.get("retry-after")));
      }
    }

    /** A 429 for a record at its update cap is an answer, not a hiccup: another try gets the same. */
    async _final(response) {
      if (!response || response.status !== 429) return false;
      try {
        return (await response.clone().json()).error.code === "too_many_updates";
      } catch (ignored) {
        return false;
      }
    }
  }

  /** Defaults for every widget of the page (translations): FeedbackWidget.labels.good = "Bonne réponse". */
  FeedbackWidget.labels = {};
  window.FeedbackWidget = FeedbackWidget;
  customElements.define(TAG, FeedbackWidget);
})();
