/*! feedback-widget | Apache-2.0 */
// <feedback-widget token="..." endpoint="...">: thumbs up / down on one AI response (docs/WIDGET.md).
"use strict";

(() => {
  class FeedbackWidget extends HTMLElement {}
  if (!customElements.get("feedback-widget")) customElements.define("feedback-widget", FeedbackWidget);
})();
