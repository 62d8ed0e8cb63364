/*! feedback-widget | Apache-2.0 */"use strict";(()=>{class FeedbackWidget extends HTMLElement{}
if(!customElements.get("feedback-widget"))customElements.define("feedback-widget",FeedbackWidget);})();
