// What an operator must not miss in another tab: the count of waiting and unread customers in the
// tab's title, a sound, and a browser notification (permission asked once) for a new customer
// waiting in their departments or a new message in their conversations. Each operator switches
// the sound and notifications off in their menu. Every alert is also a "hoz:alert" event.
// The same pulse keeps the operator's presence (chatbot/presence.py): it says whether there was
// input in this tab since the last one, and shows the presence it gets back in the top bar.
"use strict";

const SEEN_KEY = "hoz.seen";
const ASKED_KEY = "hoz.notify-asked";
const STALE_MS = 30000;
// A hidden tab does not poll (Live.poll), yet the operator is still at work: it says so this
// often, or they would show offline (browsers may slow this to once a minute; the server waits 2).
const HIDDEN_BEAT_MS = 30000;
const PRESENCE_MARKS = { online: "●", away: "◐", offline: "○" };
let audio = null;
let active = true; // opening a page is input

function beep() {
  // A short two-tone chime, made here: no file to fetch, nothing for the CSP to allow.
  audio = audio || new AudioContext();
  if (audio.state === "suspended") audio.resume();
  const now = audio.currentTime;
  for (const [offset, frequency] of [[0, 880], [0.14, 1320]]) {
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, now + offset);
    gain.gain.exponentialRampToValueAtTime(0.2, now + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.25);
    tone.connect(gain).connect(audio.destination);
    tone.start(now + offset);
    tone.stop(now + offset + 0.3);
  }
}

function seen() {
  try { return JSON.parse(localStorage.getItem(SEEN_KEY)) || {}; } catch { return {}; }
}

function askOnce(pulse) {
  const banner = document.getElementById("ask-notify");
  if (!banner || !pulse.notifications || !("Notification" in window)) return;
  banner.hidden = Notification.permission !== "default" || Boolean(localStorage.getItem(ASKED_KEY));
}

function announce(kind, pulse, title, body, url) {
  const onScreen = !document.hidden && document.hasFocus();
  const notified = pulse.notifications && !onScreen && "Notification" in window && Notification.permission === "granted";
  if (pulse.sound) { try { beep(); } catch (error) { console.warn("no sound", error); } }
  if (notified) {
    const notification = new Notification(title, { body, tag: `hoz-${kind}` });
    notification.addEventListener("click", () => { window.focus(); window.location.href = url; });
  }
  document.dispatchEvent(new CustomEvent("hoz:alert", { detail: { kind, title, body, sound: pulse.sound, notified } }));
}

document.addEventListener("DOMContentLoaded", () => {
  const bar = document.querySelector(".topbar[data-pulse]");
  if (!bar) return;
  const title = document.title;
  const badge = document.getElementById("queue-count");
  const openSession = document.querySelector(".inbox-conversation[data-session]")?.dataset.session;
  const conversationUrl = (id) => `${bar.dataset.conversationUrl}${id}/`;
  for (const button of document.querySelectorAll("#ask-notify button")) {
    button.addEventListener("click", async () => {
      localStorage.setItem(ASKED_KEY, "1");
      document.getElementById("ask-notify").hidden = true;
      if (button.dataset.notify === "allow") await Notification.requestPermission();
    });
  }

  const pulseUrl = (input) => `${bar.dataset.pulse}?active=${input ? 1 : 0}`;
  const mine = document.getElementById("my-presence");
  const tick = async () => {
    const input = active;
    active = false;
    const pulse = await Live.get(pulseUrl(input));
    if (!pulse) { active = active || input; return; }
    if (mine && pulse.presence && mine.dataset.presence !== pulse.presence) {
      mine.dataset.presence = pulse.presence;
      mine.querySelector(".presence-mark").textContent = PRESENCE_MARKS[pulse.presence] || "";
      mine.querySelector(".presence-label").textContent = pulse.presence_label;
    }
    const count = pulse.waiting + pulse.unread;
    document.title = count ? `(${count}) ${title}` : title;
    badge.hidden = pulse.waiting === 0;
    badge.textContent = pulse.waiting;
    askOnce(pulse);

    // The newest ids already alerted, shared by the operator's tabs: one alert per arrival.
    const known = seen();
    const waiting = pulse.newest_waiting;
    const message = pulse.newest_message;
    const fresh = { waiting: waiting?.id ?? known.waiting ?? 0, message: message?.id ?? known.message ?? 0 };
    localStorage.setItem(SEEN_KEY, JSON.stringify({ waiting: Math.max(fresh.waiting, known.waiting ?? 0),
                                                    message: Math.max(fresh.message, known.message ?? 0),
                                                    at: Date.now() }));
    // What was there before any tab of the operator's looked is not news (from one page to the
    // next the last look is seconds old, and what arrived in between still is).
    if (!known.at || Date.now() - known.at > STALE_MS) return;
    if (waiting && waiting.id > (known.waiting ?? 0)) {
      announce("waiting", pulse, bar.dataset.newWaiting, [waiting.name, waiting.department].filter(Boolean).join(" · "),
            conversationUrl(waiting.id));
    }
    if (message && message.id > (known.message ?? 0)
        && !(String(message.session) === openSession && !document.hidden)) {
      announce("message", pulse, `${bar.dataset.newMessage}: ${message.name}`, message.text, conversationUrl(message.session));
    }
  };
  Live.poll(tick);
  if (!document.hidden) tick().catch((error) => console.warn("pulse failed", error));
  setInterval(() => {
    if (document.hidden) Live.get(pulseUrl(false)).catch(() => {});
  }, HIDDEN_BEAT_MS);
  // Any key, click, touch or mouse move in the tab is input (away after a while without any).
  for (const type of ["keydown", "pointerdown", "pointermove", "wheel", "touchstart"]) {
    document.addEventListener(type, () => { active = true; }, { capture: true, passive: true });
  }
  // Browsers start sound only after the page was used: unlock it at the first key or click.
  const unlock = () => { audio = audio || new AudioContext(); audio.resume(); };
  document.addEventListener("pointerdown", unlock, { once: true });
  document.addEventListener("keydown", unlock, { once: true });
});
