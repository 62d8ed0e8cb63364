// Type declarations for <feedback-widget> (feedback-widget.js, served at GET /v1/widget.js).
// Copy this file into a TypeScript project (or reference it) to type the element, its events and its
// attributes in JSX (React) and templates; docs/WIDGET.md describes them.

/** One stored feedback record, as GET /v1/feedback/me returns it. */
export interface FeedbackRecord {
  feedback_id: string;
  project: string;
  run_id: string;
  user_id: string;
  session_id?: string | null;
  agent?: string | null;
  outcome?: "positive" | "negative" | null;
  score?: number | null;
  weight: number;
  comment?: string | null;
  details?: Record<string, unknown> | null;
  tags?: string[] | null;
  source: string;
  context?: Record<string, unknown> | null;
  created_at: string;
  updated_at: string;
  version: number;
  expires_at?: number | null;
}

/** The texts the widget shows or announces; any of them can be replaced (translations). */
export interface FeedbackWidgetLabels {
  group: string;
  good: string;
  bad: string;
  score: string;
  comment: string;
  send: string;
  sending: string;
  saved: string;
  retracted: string;
  expired: string;
  error: string;
}

export interface FeedbackLoadedDetail {
  record: FeedbackRecord | null;
}
export interface FeedbackSubmittedDetail {
  record: FeedbackRecord;
  /** True when this request created the record, false when it changed it. */
  created: boolean;
}
export interface FeedbackRetractedDetail {
  previous: FeedbackRecord | null;
}
export interface FeedbackErrorDetail {
  /** The HTTP status, or 0 when the request never got an answer (network, CORS). */
  status: number;
  /** The API's error code (e.g. "unauthorized"), "http_<status>", or "network_error". */
  code: string;
  message: string;
}

export interface FeedbackWidgetEventMap extends HTMLElementEventMap {
  "feedback-loaded": CustomEvent<FeedbackLoadedDetail>;
  "feedback-submitted": CustomEvent<FeedbackSubmittedDetail>;
  "feedback-retracted": CustomEvent<FeedbackRetractedDetail>;
  "feedback-error": CustomEvent<FeedbackErrorDetail>;
}

export declare class FeedbackWidget extends HTMLElement {
  /** Defaults for every widget of the page, under the label-* attributes and the labels property. */
  static labels: Partial<FeedbackWidgetLabels>;
  /** The feedback token of the response being rated (attribute `token`). */
  token: string;
  /** The API's base URL (attribute `endpoint`); default: the script's origin, else the page's. */
  endpoint: string;
  /** For a token with no user bound: the user to act for (attribute `user-id`). */
  userId: string;
  /** This widget's labels, under its label-* attributes. */
  labels: Partial<FeedbackWidgetLabels>;
  /** The stored feedback, or null (none, or not loaded yet). */
  readonly record: FeedbackRecord | null;
  /** The text in use for one label. */
  label(name: keyof FeedbackWidgetLabels): string;

  addEventListener<K extends keyof FeedbackWidgetEventMap>(
    type: K,
    listener: (this: FeedbackWidget, event: FeedbackWidgetEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof FeedbackWidgetEventMap>(
    type: K,
    listener: (this: FeedbackWidget, event: FeedbackWidgetEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | EventListenerOptions,
  ): void;
}

/** The element's attributes, as markup and JSX write them (all strings; boolean ones by presence). */
export interface FeedbackWidgetAttributes {
  token: string;
  endpoint?: string;
  "user-id"?: string;
  score?: boolean | "";
  "score-min"?: number | string;
  "score-max"?: number | string;
  "no-comment"?: boolean | "";
  "label-group"?: string;
  "label-good"?: string;
  "label-bad"?: string;
  "label-score"?: string;
  "label-comment"?: string;
  "label-send"?: string;
  "label-sending"?: string;
  "label-saved"?: string;
  "label-retracted"?: string;
  "label-expired"?: string;
  "label-error"?: string;
}

declare global {
  interface Window {
    FeedbackWidget: typeof FeedbackWidget;
  }
  interface HTMLElementTagNameMap {
    "feedback-widget": FeedbackWidget;
  }
  // JSX (React and others): <feedback-widget token={token} endpoint={api} ref={ref} />
  namespace JSX {
    interface IntrinsicElements {
      "feedback-widget": FeedbackWidgetAttributes & {
        ref?: unknown;
        key?: string | number;
        id?: string;
        class?: string;
        className?: string;
        hidden?: boolean;
        lang?: string;
      };
    }
  }
}
