// A front end on one origin using the sessionauth reference server's JSON API on another.
//
// The API must list this page's origin in SESSIONAUTH_ALLOWED_ORIGINS (CORS with credentials
// and the CSRF origin layer). Every call sends the cookies (credentials: "include"); every
// POST sends the CSRF token in X-CSRF-Token. The token lives in memory only:
//   1. before login, GET /csrf-token gives one bound to a short-lived pre-session cookie;
//   2. POST /login rotates the session, so its answer carries the next token (csrfToken);
//   3. after a reload the token is gone: GET /csrf-token again gives one for the session.

// The API's origin: ?api=http://host:port, else the reference server's default address.
// --8<-- [start:call]
const API = new URLSearchParams(location.search).get("api") || "http://127.0.0.1:8000";
let csrfToken = null;

async function call(method, path, body) {
  const headers = {};
  if (method !== "GET") {
    if (csrfToken === null) {
      csrfToken = (await call("GET", "/csrf-token")).csrfToken;
    }
    headers["X-CSRF-Token"] = csrfToken;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method,
    headers,
    credentials: "include",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) {
    const error = new Error(data.error || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}
// --8<-- [end:call]

function show(user) {
  document.getElementById("login").hidden = user !== null;
  document.getElementById("account").hidden = user === null;
  document.getElementById("who").textContent = user ? user.email : "";
  document.getElementById("role").textContent = user ? user.role : "";
}

function report(error) {
  document.getElementById("error").textContent = error ? error.message : "";
}

async function refresh() {
  try {
    show(await call("GET", "/me"));
  } catch (error) {
    if (error.status !== 401) report(error);
    show(null);
  }
}

// --8<-- [start:login]
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  report(null);
  try {
    const answer = await call("POST", "/login", {
      email: document.getElementById("email").value,
      password: document.getElementById("password").value,
    });
    csrfToken = answer.csrfToken; // the token fetched before the login no longer verifies
    await refresh();
  } catch (error) {
    report(error);
  }
});
// --8<-- [end:login]

document.getElementById("logout").addEventListener("click", async () => {
  report(null);
  try {
    await call("POST", "/logout");
    csrfToken = null;
    show(null);
  } catch (error) {
    report(error);
  }
});

refresh();
