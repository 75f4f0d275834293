// The campaign pages. The wizard shows only the chosen template's fields, the labels only when
// they choose the audience and the date only when sending later (without this script every field
// is on the page and the server reads those that apply). A campaign's report follows its status
// and figures every 2 s while it is scheduled, sending or paused, and for an hour after it
// finished (Meta's statuses still come in), and shows or hides its buttons as the status allows
// (a pause from another tab).
// No framework, no build; the page's CSP allows no inline script.
"use strict";

const CAMPAIGN_POLL_MS = 2000;

function campaignWizard(form) {
  const toggle = (element, shown) => {
    if (!element) return;
    element.hidden = !shown;
    // A hidden part is not sent either: its values stay on the page if it comes back.
    if ("disabled" in element) element.disabled = !shown;
    else for (const input of element.querySelectorAll("input, select, textarea")) input.disabled = !shown;
  };
  const update = () => {
    const template = form.elements.template;
    for (const group of form.querySelectorAll("fieldset[data-template]")) {
      toggle(group, template && group.dataset.template === template.value);
    }
    const everyone = form.querySelector("input[name=audience][value=everyone]");
    toggle(form.querySelector("fieldset.labels"), !(everyone && everyone.checked));
    const later = form.querySelector("input[name=when][value=later]");
    const moment = form.elements.scheduled_at;
    if (moment) toggle(moment.closest(".field"), Boolean(later && later.checked));
  };
  form.addEventListener("change", (event) => {
    if (event.target.matches("select[name=template], input[name=audience], input[name=when]")) update();
  });
  update();
}

function campaignReport(section) {
  const parts = { status: document.getElementById("campaign-status"), html: document.getElementById("campaign-figures") };
  const actions = document.getElementById("campaign-actions");
  const announce = document.getElementById("campaign-announce");
  const shown = { status: null, html: null, state: section.dataset.status };
  let stopped = false;
  let timer = null;

  const swap = (target, html) => {
    // Keep what the operator opened (the chart's table) and where the keyboard is.
    const open = new Set([...target.querySelectorAll("details[open][id]")].map((details) => details.id));
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    target.replaceChildren(template.content);
    for (const id of open) document.getElementById(id)?.setAttribute("open", "");
  };

  const update = async () => {
    const response = await fetch(section.dataset.live, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.status === 404) stopped = true;  // deleted meanwhile: nothing more to follow
    if (!response.ok) return;
    const data = await response.json();
    const focused = document.activeElement;
    const focusedId = focused && focused !== document.body ? focused.id : "";
    const inside = focused && section.parentElement.contains(focused);
    if (data.status_html !== shown.status) swap(parts.status, data.status_html);
    if (data.html !== shown.html) swap(parts.html, data.html);
    shown.status = data.status_html;
    shown.html = data.html;
    if (actions) {
      for (const form of actions.querySelectorAll("form[data-action]")) form.hidden = !data.actions.includes(form.dataset.action);
    }
    if (data.status !== shown.state) announce.textContent = data.status_label;
    shown.state = data.status;
    if (inside && (!focused.isConnected || focused.offsetParent === null)) {
      // The focused control was replaced or hidden: the same one again, else the first button left.
      const again = focusedId ? document.getElementById(focusedId) : null;
      const target = again && again.offsetParent !== null ? again : actions?.querySelector("form:not([hidden]) button");
      (target || section).focus();
    }
    if (!data.active) stopped = true;
  };

  const run = async () => {
    timer = null;
    if (!document.hidden) {
      try { await update(); } catch (error) { console.warn("campaign update failed", error); }
    }
    if (!stopped) timer = setTimeout(run, CAMPAIGN_POLL_MS);
  };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer !== null) { clearTimeout(timer); run(); }
  });
  timer = setTimeout(run, CAMPAIGN_POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("campaign-form");
  if (form) campaignWizard(form);
  const section = document.querySelector("#campaign-state[data-live]");
  if (section) campaignReport(section);
});
