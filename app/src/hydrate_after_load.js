// Starts the WASM of a page's islands (app/src/lib.rs, HydrateAfterLoad, which fills in the
// placeholders). A page without islands loads no WASM and is marked hydrated at once.
const failed = () => {
  // The module could not be fetched or started: the page stays as the server sent it, and says
  // so in its language where the card step says it is loading (or at the top of the screen).
  document.body.dataset.wasm = "failed";
  const text = document.documentElement.lang === "en" ? __FAILED_EN__ : __FAILED_JA__;
  const lines = document.querySelectorAll('[data-testid="card-loading"]');
  for (const line of lines) {
    line.textContent = text;
    line.setAttribute("role", "alert");
  }
  const main = document.querySelector("main");
  if (!lines.length && main) {
    const line = document.createElement("p");
    line.className = "card notice";
    line.dataset.testid = "wasm-failed";
    line.setAttribute("role", "alert");
    line.textContent = text;
    main.prepend(line);
  }
};
const done = () => {
  document.body.dataset.hydrated = "true";
};
const islands = () => document.querySelectorAll("leptos-island");

// Makes the live page's text outside the islands that of `fresh` (the same page rendered in
// the other language): text, comments and attributes, node by node. The islands keep their
// state and switch their own text; scripts and noscript are left alone. Returns false, having
// changed nothing, when the two are not the same page.
const sameShape = (a, b) => {
  if (a.nodeType !== b.nodeType) return false;
  if (a.nodeType !== 1) return true;
  if (a.tagName !== b.tagName) return false;
  if (["LEPTOS-ISLAND", "SCRIPT", "NOSCRIPT"].includes(a.tagName)) return true;
  if (a.childNodes.length !== b.childNodes.length) return false;
  for (let i = 0; i < a.childNodes.length; i++) {
    if (!sameShape(a.childNodes[i], b.childNodes[i])) return false;
  }
  return true;
};
const copyText = (a, b) => {
  if (a.nodeType === 3 || a.nodeType === 8) {
    if (a.nodeValue !== b.nodeValue) a.nodeValue = b.nodeValue;
    return;
  }
  if (a.nodeType !== 1 || ["LEPTOS-ISLAND", "SCRIPT", "NOSCRIPT"].includes(a.tagName)) return;
  for (const name of b.getAttributeNames()) {
    if (name !== "nonce" && a.getAttribute(name) !== b.getAttribute(name)) {
      a.setAttribute(name, b.getAttribute(name));
    }
  }
  for (let i = 0; i < a.childNodes.length; i++) copyText(a.childNodes[i], b.childNodes[i]);
};

// On a page with islands the language switch works in place, so that what the patient did in
// an island (a PIN pad open, 同意照会's list shown, the practice app's request) survives: the
// page is fetched in the other language (the server remembers the choice in its cookie), its
// text is put around the islands and the islands are told. Anything unexpected: the switch is
// the plain link it is without scripts.
const switchInPlace = (m, link) => {
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    try {
      const answer = await fetch(link.href, { credentials: "same-origin" });
      if (!answer.ok) throw new Error(`language switch: ${answer.status}`);
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      const lang = fresh.documentElement.lang;
      if (!sameShape(document.body, fresh.body) || !["ja", "en"].includes(lang)) {
        throw new Error("language switch: another page came back");
      }
      copyText(document.body, fresh.body);
      document.documentElement.lang = lang;
      document.title = fresh.title;
      m.switch_lang(lang);
      // A `?lang=` in the address would win over the remembered choice at the next reload.
      const address = new URL(location.href);
      if (address.searchParams.has("lang")) {
        address.searchParams.delete("lang");
        history.replaceState(history.state, "", address);
      }
    } catch (error) {
      console.warn(error);
      location.href = link.href;
    }
  });
};

const start = () =>
  import(__JS__)
    .then((m) =>
      m.default({ module_or_path: __WASM__ }).then(() => {
        m.hydrate();
        for (const el of islands()) {
          // Only the exports that are islands (`Name_hash`), never `hydrate` or the others.
          const name = el.dataset.component || "";
          const island = /^[A-Z][A-Za-z]*_[0-9]+$/.test(name) && m[name];
          if (typeof island !== "function") throw new Error(`no island ${name}`);
          island(el);
        }
        const link = document.querySelector("a.lang-switch");
        if (link) switchInPlace(m, link);
        done();
      }),
    )
    .catch(failed);
const idle = () =>
  "requestIdleCallback" in window ? requestIdleCallback(start, { timeout: 1000 }) : setTimeout(start, 0);
const begin = () => (islands().length ? idle() : done());
if (document.readyState === "complete") begin();
else addEventListener("load", begin, { once: true });
