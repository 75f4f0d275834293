// The dashboard's live parts: the open conversation (messages, ticks, its status, operator and
// department), the conversation list, the overview's figures; confirmations and bulk actions. No framework, no build. compose.js, notify.js and shortcuts.js use `Live`.
"use strict";

const Live = {
  POLL_MS: 2000,

  poll(task, every = Live.POLL_MS) {
    // One request at a time, paused while the tab is hidden, resumed at once when it shows again.
    let timer = null;
    const run = async () => {
      timer = null;
      if (!document.hidden) {
        try { await task(); } catch (error) { console.warn("live update failed", error); }
      }
      timer = setTimeout(run, every);
    };
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && timer !== null) { clearTimeout(timer); run(); }
    });
    timer = setTimeout(run, every);
  },

  fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content;
  },

  async get(url, json = true) {
    const response = await fetch(url, { headers: { Accept: json ? "application/json" : "text/html" }, credentials: "same-origin" });
    if (!response.ok) return null;
    return json ? response.json() : response.text();
  },

  typing() {
    // Anything written in the reply box or a template's parameters, not to be thrown away.
    const fields = document.querySelectorAll("#compose textarea, #compose input:not([type=hidden])");
    return [...fields].some((field) => (field.type === "file" ? field.files.length : field.value.trim()));
  },
};
window.Live = Live;

function liveConversation(root) {
  const thread = document.getElementById("thread");
  const nearBottom = () => thread.scrollHeight - thread.scrollTop - thread.clientHeight < 80;
  // The newest row shown (the thread is in time order: a scheduled message, made earlier, is last).
  const newest = () => Math.max(0, ...[...thread.querySelectorAll("article.msg")].map((node) => Number(node.dataset.id)));
  thread.scrollTop = thread.scrollHeight;
  Live.poll(async () => {
    const url = `${root.dataset.updates}?mark=${encodeURIComponent(root.dataset.mark)}&after=${newest()}`;
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.status === 404) {
      // Moved out of this operator's sight (a restricted department): back to the list.
      window.location.href = root.querySelector(".back").href;
      return;
    }
    const update = response.ok ? await response.json() : null;
    if (!update || !update.changed) return;
    if (update.reload) { window.location.reload(); return; }
    root.dataset.mark = update.mark;
    const follow = nearBottom();
    // The last page of the thread, each message with a version: replace what changed (a tick, a
    // reaction, an edit), put what is new in its place, leave the rest (an audio being played)
    // alone, and drop a scheduled message that was cancelled.
    const listed = new Set(update.messages.map(([id]) => `m${id}`));
    for (const node of thread.querySelectorAll("article.msg[data-scheduled]")) if (!listed.has(node.id)) node.remove();
    let previous = null;
    for (const [id, version, html] of update.messages) {
      const existing = document.getElementById(`m${id}`);
      if (existing && existing.dataset.v === version) { previous = existing; continue; }
      const node = Live.fragment(html).firstElementChild;
      node.dataset.v = version;
      if (existing) existing.replaceWith(node);
      else {
        document.getElementById("no-messages")?.remove();
        const first = thread.querySelector("article.msg");
        if (previous) previous.after(node);
        else if (first) first.before(node);
        else thread.appendChild(node);
      }
      previous = node;
    }
    const scheduled = document.getElementById("scheduled-list");
    if (scheduled && update.scheduled !== undefined && !scheduled.contains(document.activeElement)) {
      scheduled.replaceChildren(Live.fragment(update.scheduled));
    }
    if (follow) thread.scrollTop = thread.scrollHeight;
    // Who has it, where, and who else is looking: swapped in place, unless the operator is on
    // one of those controls right now (then the next change brings them).
    const actions = document.getElementById("conversation-actions");
    document.getElementById("conversation-head").replaceChildren(Live.fragment(update.head));
    if (!actions.contains(document.activeElement)) actions.replaceChildren(Live.fragment(update.actions));
    if (update.state !== root.dataset.state) {
      // Who may write what changed (closed, the window, a colleague has the customer).
      root.dataset.state = update.state;
      const compose = document.getElementById("compose");
      const fresh = Live.fragment(update.compose);
      const form = compose.querySelector("form");
      const next = fresh.querySelector("form");
      if (!Live.typing()) {
        compose.replaceChildren(fresh);
        window.initCompose(compose);
      } else if (form && next && form.id === next.id) {
        // Keep the draft; a colleague's arrival still asks before sending.
        if (next.dataset.colleague) form.dataset.colleague = next.dataset.colleague;
        else delete form.dataset.colleague;
      } else document.getElementById("changed-banner").hidden = false;
    }
  });
}

function liveList(list) {
  Live.poll(async () => {
    const html = await Live.get(new URL(list.dataset.live, window.location.href), false);
    if (html === null || html === list.dataset.html) return;
    list.dataset.html = html;
    // Keep what the operator ticked and where the keyboard is.
    const ticked = new Set([...list.querySelectorAll("input[name=sessions]:checked")].map((box) => box.value));
    const focused = list.contains(document.activeElement) ? document.activeElement.closest("li")?.dataset.session : null;
    const onBox = document.activeElement?.matches?.("input[name=sessions]");
    list.replaceChildren(Live.fragment(html));
    for (const box of list.querySelectorAll("input[name=sessions]")) box.checked = ticked.has(box.value);
    if (focused) list.querySelector(`li[data-session="${focused}"] ${onBox ? "input" : "a"}`)?.focus();
    updateBulk();
  });
}

function updateBulk() {
  const form = document.getElementById("bulk-form");
  if (!form) return;
  const ticked = document.querySelectorAll("#conversation-rows input[name=sessions]:checked").length;
  form.hidden = ticked === 0;
  document.getElementById("bulk-count").textContent = `${form.dataset.count} ${ticked}`;
  const action = form.elements.action.value;
  for (const select of form.querySelectorAll("[data-for-action]")) {
    select.hidden = select.dataset.forAction !== action;
    select.required = !select.hidden;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const conversation = document.querySelector(".inbox-conversation[data-updates]");
  if (conversation) liveConversation(conversation);
  const list = document.querySelector("#conversation-rows[data-live]");
  if (list) liveList(list);
  const figures = document.querySelector("#overview-figures[data-refresh]");
  if (figures) {
    Live.poll(async () => {
      const html = await Live.get(figures.dataset.refresh, false);
      if (html !== null) figures.replaceChildren(Live.fragment(html));
    }, 10000);
  }

  // Selects that apply at once (language): the page's CSP allows no inline handlers.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches("#conversation-rows input[name=sessions], #bulk-form select[name=action]")) updateBulk();
  });
  updateBulk();

  document.addEventListener("submit", (event) => {
    const form = event.target;
    const button = event.submitter;
    if (button?.dataset.confirm && !window.confirm(button.dataset.confirm)) { event.preventDefault(); return; }
    if (form.dataset.colleague && form.elements.override && !form.elements.override.value) {
      // A colleague has the conversation: answer only when the operator says so.
      if (!window.confirm(form.dataset.colleague)) { event.preventDefault(); return; }
      form.elements.override.value = "1";
    }
    if (form.method === "post") {
      // Enter pressed twice, a double click: one submission.
      if (form.dataset.sending) { event.preventDefault(); return; }
      form.dataset.sending = "1";
    }
  });
  window.addEventListener("pageshow", () => {
    for (const form of document.querySelectorAll("form[data-sending]")) delete form.dataset.sending;
  });

  for (const button of document.querySelectorAll("[data-open-dialog]")) {
    button.addEventListener("click", () => document.getElementById(button.dataset.openDialog).showModal());
  }
  for (const button of document.querySelectorAll(".flash .dismiss")) {
    button.addEventListener("click", () => button.closest("li").remove());
  }
  for (const item of document.querySelectorAll(".flash li:not(.error)")) {
    setTimeout(() => item.remove(), 8000);
  }
});
