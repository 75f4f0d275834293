// Writing: the reply box, where Enter sends (Shift+Enter for a new line), "/" at the start of the box opens the
// canned replies, filtered as the operator types (accents and case ignored), picked with the
// arrows and Enter or Tab, closed with Esc; a template's preview filled as its parameters are typed.
"use strict";

const fold = (text) => text.normalize("NFD").replace(/\p{Diacritic}/gu, "").toLowerCase();

function cannedPicker(box) {
  const panel = document.getElementById("canned");
  if (!panel) return null;
  const options = [...panel.querySelectorAll("[role=option]")];
  const none = document.getElementById("canned-none");
  let active = null;

  const visible = () => options.filter((option) => !option.hidden);
  const activate = (option) => {
    if (active) active.setAttribute("aria-selected", "false");
    active = option;
    if (option) {
      option.setAttribute("aria-selected", "true");
      option.scrollIntoView({ block: "nearest" });
      box.setAttribute("aria-activedescendant", option.id);
    } else box.removeAttribute("aria-activedescendant");
  };
  const close = () => { panel.hidden = true; activate(null); };
  const pick = (option) => {
    box.value = option.dataset.text;
    close();
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  };
  const filter = () => {
    const query = box.value.match(/^\/([^\n]*)$/);
    if (!query) { close(); return; }
    const words = fold(query[1]).split(/\s+/).filter(Boolean);
    for (const option of options) {
      const haystack = fold(option.dataset.search);
      option.hidden = !words.every((word) => haystack.includes(word));
    }
    panel.hidden = false;
    none.hidden = visible().length > 0;
    activate(visible()[0] || null);
  };

  box.addEventListener("input", filter);
  box.addEventListener("blur", () => setTimeout(close, 150));
  for (const option of options) {
    option.addEventListener("mousedown", (event) => { event.preventDefault(); pick(option); });
  }
  return {
    open: () => !panel.hidden,
    close,
    key(event) {
      const shown = visible();
      const at = shown.indexOf(active);
      if (event.key === "ArrowDown") activate(shown[(at + 1) % shown.length] || null);
      else if (event.key === "ArrowUp") activate(shown[(at - 1 + shown.length) % shown.length] || null);
      else if ((event.key === "Enter" || event.key === "Tab") && active) pick(active);
      else if (event.key === "Escape") close();
      else return false;
      event.preventDefault();
      return true;
    },
  };
}

function templatePicker(picker) {
  const fieldsets = picker.form.querySelectorAll("fieldset[data-template]");
  const preview = (fields) => {
    // The template's text as the customer will read it: {{1}}, {{name}}… filled as typed.
    for (const part of fields.querySelectorAll("p[data-text]")) {
      part.textContent = part.dataset.text.replace(/\{\{\s*([\w]+)\s*\}\}/g, (placeholder, name) => {
        const input = fields.querySelector(`input[data-part="${part.dataset.part}"][data-name="${name}"]`);
        return input && input.value.trim() ? input.value.trim() : placeholder;
      });
    }
  };
  const show = () => {
    for (const fields of fieldsets) {
      const chosen = fields.dataset.template === picker.value;
      fields.hidden = !chosen;
      fields.disabled = !chosen;
      if (chosen) preview(fields);
    }
  };
  for (const fields of fieldsets) fields.addEventListener("input", () => preview(fields));
  picker.addEventListener("change", show);
  show();
}

function scheduleForm(form) {
  // Text or an approved template: only the chosen part is shown, checked and sent.
  const radios = form.querySelectorAll("input[type=radio][name=kind]");
  const show = () => {
    const kind = form.querySelector("input[name=kind]:checked")?.value;
    for (const part of form.querySelectorAll("fieldset[data-kind]")) {
      part.hidden = part.dataset.kind !== kind;
      part.disabled = part.hidden;
    }
  };
  for (const radio of radios) radio.addEventListener("change", show);
  if (radios.length) show();
}

function openSchedule(link) {
  // The compose area's "Schedule": the form in the side panel, opened, with the reply's text moved
  // into it when it has none yet.
  const details = document.getElementById(link.dataset.openDetails);
  if (!details) return;
  details.open = true;
  const reply = document.querySelector("#reply-form textarea[name=text]");
  const text = details.querySelector("textarea[name=text]");
  if (reply && text && reply.value.trim() && !text.value.trim()) {
    text.value = reply.value;
    reply.value = "";
  }
  details.scrollIntoView({ block: "nearest" });
  details.querySelector("input[type=datetime-local]")?.focus();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest?.("a[data-open-details]");
  if (!link) return;
  event.preventDefault();
  openSchedule(link);
});

function initCompose(root) {
  for (const picker of root.querySelectorAll("select.template-picker")) templatePicker(picker);
  for (const form of root.querySelectorAll("#schedule-form")) scheduleForm(form);
  const box = root.querySelector("#reply-form textarea[name=text]");
  if (!box) return;
  const picker = cannedPicker(box);
  // On a phone's keyboard Enter is a new line, as in WhatsApp; the Send button sends.
  const enterSends = window.matchMedia("(pointer: fine)").matches;
  box.addEventListener("keydown", (event) => {
    if (event.isComposing) return;
    if (picker && picker.open() && picker.key(event)) return;
    if (event.key === "Escape") { box.blur(); return; }
    const plainEnter = event.key === "Enter" && !event.shiftKey && !event.altKey;
    if (plainEnter && (enterSends || event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      if (box.value.trim() || box.form.elements.file.files.length) box.form.requestSubmit();
    }
  });
  const file = box.form.elements.file;
  file.addEventListener("change", () => {
    box.form.querySelector("[data-file-name]").textContent = file.files.length ? file.files[0].name : "";
  });
  if (window.location.hash === "#reply-form") box.focus();
}
window.initCompose = initCompose;

document.addEventListener("DOMContentLoaded", () => initCompose(document));
