// The dashboard's only way to the server: GraphQL over HTTP POST and the scoreUpdates subscription
// over graphql-transport-ws, both with the key from sessionStorage as an Authorization header
// (for the socket, in connection_init's payload). The key never goes into a URL, localStorage, a
// log line or an error message: errors carry the server's code and message only.

const STORAGE_KEY = "insider-selling:api-key";

export const keyStore = {
  get() { return sessionStorage.getItem(STORAGE_KEY); },
  set(key) { sessionStorage.setItem(STORAGE_KEY, key); },
  clear() { sessionStorage.removeItem(STORAGE_KEY); },
};

/** A failed request: `code` is the server's error code (invalid_api_key, rate_limited, ...). */
export class ApiError extends Error {
  constructor(code, message, status = 0) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
  }
  get isKeyProblem() {
    return ["missing_api_key", "malformed_api_key", "invalid_api_key", "insufficient_scope"].includes(this.code);
  }
}

/** What a person should read for each key problem. */
export function keyMessage(code) {
  switch (code) {
    case "malformed_api_key":
      return "That is not a valid API key: it must be the whole sk_live_… key (48 characters) as it was issued. " +
        "Check that it was copied completely, with nothing added.";
    case "invalid_api_key":
      return "This API key was not accepted: it has been revoked, has expired, or does not exist. " +
        "Ask the key's owner for a current key.";
    case "insufficient_scope":
      return "This API key may not read the scores: it needs the signals:read scope.";
    case "missing_api_key":
      return "Enter an API key to continue.";
    default:
      return "The key could not be checked.";
  }
}

/** POST a GraphQL operation; resolves to `data` or throws ApiError. */
export async function graphql(query, variables = {}) {
  const key = keyStore.get();
  if (!key) throw new ApiError("missing_api_key", keyMessage("missing_api_key"), 401);
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables }),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError("network_error", "The server could not be reached.");
  }
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: handled below */ }
  if (body && body.error) {  // the REST envelope: authentication and rate-limit refusals
    throw new ApiError(body.error.code, body.error.message, response.status);
  }
  if (body && Array.isArray(body.errors) && body.errors.length) {
    const first = body.errors[0];
    const code = (first.extensions && first.extensions.code) || "graphql_error";
    if (!body.data || code === "insufficient_scope" || code === "invalid_api_key") {
      throw new ApiError(code, first.message, response.status);
    }
  }
  if (!response.ok || !body || !body.data) {
    throw new ApiError("http_" + response.status, `The server answered ${response.status}.`, response.status);
  }
  return body.data;
}

/**
 * Subscribe over graphql-transport-ws. Calls `onNext(data)` per result, `onError(ApiError)` for an
 * error message, and `onClose(reason)` once when the socket ends for any reason (reason: "rejected"
 * when the server refused the key, "closed" otherwise). Returns a function that ends it.
 */
export function subscribe(query, variables, { onOpen, onNext, onError, onClose }) {
  const key = keyStore.get();
  const url = new URL("/graphql", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url.href, "graphql-transport-ws");
  let ended = false;
  const end = (reason) => {
    if (ended) return;
    ended = true;
    onClose && onClose(reason);
  };
  socket.addEventListener("open", () => {
    socket.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${key}` } }));
  });
  socket.addEventListener("message", (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    switch (message.type) {
      case "connection_ack":
        socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables } }));
        onOpen && onOpen();
        break;
      case "next": {
        const payload = message.payload || {};
        if (payload.errors && payload.errors.length) {
          const first = payload.errors[0];
          onError && onError(new ApiError((first.extensions && first.extensions.code) || "graphql_error", first.message));
        } else if (payload.data) {
          onNext(payload.data);
        }
        break;
      }
      case "error": {
        const first = (Array.isArray(message.payload) && message.payload[0]) || {};
        onError && onError(new ApiError((first.extensions && first.extensions.code) || "graphql_error",
          first.message || "The subscription failed."));
        break;
      }
      case "complete":
        socket.close(1000);
        break;
      case "ping":
        socket.send(JSON.stringify({ type: "pong" }));
        break;
    }
  });
  socket.addEventListener("close", (event) => {
    end(event.code === 4403 || event.code === 4401 ? "rejected" : "closed");
  });
  return () => {
    ended = true;
    if (socket.readyState <= 1) socket.close(1000);
  };
}
