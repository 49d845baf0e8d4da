// Passkeys on the account page (list, add, rename, delete) and the login page (sign in).
// Talks to the JSON routes under /passkeys; every unsafe request carries a fresh CSRF token
// from GET /csrf-token (registering and deleting give the session a new one). The options'
// base64url fields become ArrayBuffers here and the credential's ArrayBuffers base64url text,
// without PublicKeyCredential.parse*OptionsFromJSON, which older browsers lack.
"use strict";
(() => {
  const toBuffer = (text) => {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
  };
  const toText = (buffer) => {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const descriptors = (list) => (list || []).map((c) => ({ ...c, id: toBuffer(c.id) }));

  const creationOptions = (o) => ({
    ...o,
    challenge: toBuffer(o.challenge),
    user: { ...o.user, id: toBuffer(o.user.id) },
    excludeCredentials: descriptors(o.excludeCredentials),
  });
  const requestOptions = (o) => ({
    ...o,
    challenge: toBuffer(o.challenge),
    allowCredentials: descriptors(o.allowCredentials),
  });

  // The PublicKeyCredential as the server's JSON (what toJSON() would give).
  const credentialJSON = (credential) => {
    const r = credential.response;
    const response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      if (typeof r.getTransports === "function") response.transports = r.getTransports();
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) response.userHandle = toText(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response,
      clientExtensionResults: credential.getClientExtensionResults(),
    };
  };

  async function freshToken() {
    const response = await fetch("/csrf-token", { credentials: "same-origin" });
    return (await response.json()).csrfToken;
  }

  // Registering or deleting gave the session a new token: the page's forms need it too.
  async function renewFormTokens() {
    const token = await freshToken();
    for (const input of document.querySelectorAll('input[name="csrf_token"]')) input.value = token;
  }

  async function call(method, path, body) {
    const csrfToken = await freshToken();
    const init = {
      method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrfToken },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error || `The server answered ${response.status}`);
    return answer;
  }

  const show = (element, text) => {
    if (!element) return;
    element.textContent = text || "";
    element.hidden = !text;
  };
  const failure = (error) =>
    error && error.name === "NotAllowedError"
      ? "The passkey request was cancelled or timed out."
      : (error && error.message) || "Something went wrong.";
  const when = (seconds) =>
    seconds == null ? "Never" : new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";

  // -- the account page ------------------------------------------------------------------

  function row(passkey, refresh, report) {
    const tr = document.createElement("tr");
    tr.dataset.passkeyId = passkey.id;
    const nameCell = document.createElement("td");
    const form = document.createElement("form");
    form.className = "inline passkey-rename";
    const input = document.createElement("input");
    input.type = "text";
    input.maxLength = 64;
    input.value = passkey.name;
    input.setAttribute("aria-label", "Passkey name");
    const rename = document.createElement("button");
    rename.type = "submit";
    rename.className = "button secondary small";
    rename.textContent = "Rename";
    form.append(input, " ", rename);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await call("PATCH", `/passkeys/${passkey.id}`, { name: input.value });
        report("", "Passkey renamed.");
        await refresh();
      } catch (error) {
        report(failure(error));
      }
    });
    nameCell.append(form);
    const created = document.createElement("td");
    created.className = "nowrap";
    created.textContent = when(passkey.created);
    const used = document.createElement("td");
    used.className = "nowrap passkey-last-used";
    used.textContent = when(passkey.lastUsed);
    const actions = document.createElement("td");
    actions.className = "actions";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button danger small";
    remove.textContent = "Delete";
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Delete the passkey "${passkey.name}"? It will no longer sign you in.`)) return;
      try {
        await call("DELETE", `/passkeys/${passkey.id}`);
        await renewFormTokens();
        report("", "Passkey deleted. Your other sessions were signed out.");
        await refresh();
      } catch (error) {
        report(failure(error));
      }
    });
    actions.append(remove);
    tr.append(nameCell, created, used, actions);
    return tr;
  }

  function accountPage(section) {
    const list = section.querySelector("#passkeys-list");
    const empty = section.querySelector("#passkeys-empty");
    const report = (error, status) => {
      show(section.querySelector("#passkeys-error"), error);
      show(section.querySelector("#passkeys-status"), status);
    };
    const refresh = async () => {
      const response = await fetch("/passkeys", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) return report("Your passkeys could not be loaded.");
      const { passkeys } = await response.json();
      list.replaceChildren(...passkeys.map((p) => row(p, refresh, report)));
      empty.hidden = passkeys.length > 0;
    };
    section.querySelector("#passkey-add-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      report("", "");
      try {
        const { publicKey } = await call("POST", "/passkeys/register/options");
        const credential = await navigator.credentials.create({ publicKey: creationOptions(publicKey) });
        const name = section.querySelector("#passkey-name").value;
        await call("POST", "/passkeys/register", { credential: credentialJSON(credential), name });
        await renewFormTokens();
        section.querySelector("#passkey-name").value = "";
        report("", "Passkey added. Your other sessions were signed out.");
        await refresh();
      } catch (error) {
        report(failure(error));
      }
    });
    refresh();
  }

  // -- the login page --------------------------------------------------------------------

  function loginPage(button) {
    const error = document.getElementById("passkey-login-error");
    // Shown only where it can work: with this script, in a browser that has WebAuthn.
    if (!window.PublicKeyCredential) return;
    button.closest("[data-passkey-login]").hidden = false;
    button.addEventListener("click", async () => {
      show(error, "");
      try {
        const { publicKey } = await call("POST", "/passkeys/login/options");
        const credential = await navigator.credentials.get({ publicKey: requestOptions(publicKey) });
        const remember = document.getElementById("remember");
        await call("POST", "/passkeys/login", {
          credential: credentialJSON(credential),
          remember: Boolean(remember && remember.checked),
        });
        const next = document.querySelector('input[name="next"]');
        // The server made next safe (a local path) before it rendered the page.
        window.location.assign((next && next.value) || "/");
      } catch (failed) {
        show(error, failure(failed));
      }
    });
  }

  const section = document.querySelector("[data-passkeys]");
  if (section) accountPage(section);
  const button = document.getElementById("passkey-login");
  if (button) loginPage(button);
})();
