// The dashboard's live parts: new messages and ticks in an open conversation, the conversation
// list refreshed, canned replies, the template picker and confirmations. No framework, no build.
"use strict";

const POLL_MS = 2000;

function poll(task) {
  // One request at a time, paused while the tab is hidden, resumed at once when it shows again.
  let timer = null;
  const run = async () => {
    timer = null;
    if (!document.hidden) {
      try { await task(); } catch (error) { console.warn("live update failed", error); }
    }
    timer = setTimeout(run, POLL_MS);
  };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer !== null) { clearTimeout(timer); run(); }
  });
  timer = setTimeout(run, POLL_MS);
}

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content;
}

function liveConversation(root) {
  const thread = document.getElementById("thread");
  const nearBottom = () => thread.scrollHeight - thread.scrollTop - thread.clientHeight < 80;
  thread.scrollTop = thread.scrollHeight;
  poll(async () => {
    const last = thread.querySelector("article.msg:last-of-type");
    const url = `${root.dataset.updates}?mark=${encodeURIComponent(root.dataset.mark)}&after=${last ? last.dataset.id : 0}`;
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) return;
    const update = await response.json();
    if (!update.changed) return;
    if (update.reload) { window.location.reload(); return; }
    root.dataset.mark = update.mark;
    const follow = nearBottom();
    // The last page of the thread, each message with a version: replace what changed (a tick, a
    // reaction, an edit), append what is new, leave the rest (an audio being played) alone.
    for (const [id, version, html] of update.messages) {
      const existing = document.getElementById(`m${id}`);
      if (existing && existing.dataset.v === version) continue;
      const node = fragment(html).firstElementChild;
      node.dataset.v = version;
      if (existing) existing.replaceWith(node);
      else {
        document.getElementById("no-messages")?.remove();
        thread.appendChild(node);
      }
    }
    if (follow) thread.scrollTop = thread.scrollHeight;
    const windowState = update.window_open ? "open" : "closed";
    if (update.status !== root.dataset.status || windowState !== root.dataset.window) {
      // The reply form depends on both: reload unless the operator is typing.
      const draft = document.querySelector("#reply-form textarea");
      if (draft && draft.value.trim()) document.getElementById("changed-banner").hidden = false;
      else window.location.reload();
    }
  });
}

function liveList(table) {
  const body = table.querySelector("tbody");
  poll(async () => {
    const url = new URL(table.dataset.live, window.location.href);
    url.searchParams.set("partial", "1");
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) return;
    const html = await response.text();
    if (html !== body.dataset.html) {
      body.dataset.html = html;
      body.replaceChildren(fragment(html));
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const conversation = document.querySelector(".conversation[data-updates]");
  if (conversation) liveConversation(conversation);
  const list = document.querySelector("table[data-live]");
  if (list) liveList(list);

  // Selects that apply at once (language, filters): the page's CSP allows no inline handlers.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  for (const select of document.querySelectorAll("select.canned")) {
    select.addEventListener("change", () => {
      const box = select.form.querySelector("textarea[name=text]");
      box.value = select.value.replaceAll("{name}", select.dataset.name || "");
      select.value = "";
      box.focus();
    });
  }
  for (const picker of document.querySelectorAll("select.template-picker")) {
    const show = () => {
      for (const fields of picker.form.querySelectorAll("fieldset[data-template]")) {
        const chosen = fields.dataset.template === picker.value;
        fields.hidden = !chosen;
        fields.disabled = !chosen;
      }
    };
    picker.addEventListener("change", show);
    show();
  }
  document.addEventListener("submit", (event) => {
    const button = event.submitter;
    if (button?.dataset.confirm && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });
});
