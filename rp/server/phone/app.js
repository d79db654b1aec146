// The phone side of Keydesk's account recovery (issue 7). The computer
// shows a QR code of /r/SESSION#SECRET: the secret is in the fragment,
// which browsers never send to any server, and leaves the address bar at
// once. This page describes the request, lets the user pick the number
// the computer shows (a wrong one stops the request), and approves it
// with the user's passkey, user verification required. It talks to this
// page's own origin only (Content-Security-Policy connect-src 'self').
"use strict";

(function () {
  var $ = function (id) { return document.getElementById(id); };
  var sections = ["loading", "code", "describe", "approve", "done", "stopped"];
  var parts = location.pathname.split("/");
  var sessionId = parts[parts.length - 1] || "";
  var proof = null;
  var picked = 0;

  if (location.hash.length > 1) {
    proof = { secret: location.hash.slice(1) };
    // Out of the address bar, the history and anything that reads the
    // URL later.
    history.replaceState(null, "", location.pathname);
  }

  // What each stable error code means to the person holding the phone.
  var messages = {
    recovery_expired: "This request has expired. Start again on your computer.",
    recovery_refused: "This request was stopped and cannot be used any more. Start again on your computer if you need to.",
    recovery_approved: "This request was already approved. Go back to your computer.",
    recovery_used: "This request was already used. Start again on your computer if you need to.",
    recovery_not_found: "There is no such request. Scan the QR code again, or start again on your computer.",
    bad_recovery_secret: "That does not match the request. Check the code on your computer and type it again.",
    wrong_number: "That is not the number your computer shows, so the request was stopped to keep your account safe. If it was you, start again on your computer.",
    approval_failed: "Your passkey could not approve this request. Use a passkey for this account and try again.",
    key_revoked: "That passkey was revoked and cannot approve anything. Use another one, or ask your helpdesk.",
    user_disabled: "This account is disabled. Ask your helpdesk.",
    rate_limited: "Too many attempts. Wait a minute, then try again.",
    wrong_address: "This page is not at your account's own address, so your passkey cannot approve anything here. Nothing was approved. Scan the QR code on your computer again and open its link as it is."
  };
  var final = ["recovery_expired", "recovery_refused", "recovery_approved", "recovery_used", "recovery_not_found", "wrong_number", "user_disabled", "wrong_address"];

  function show(name) {
    sections.forEach(function (s) { $(s).hidden = s !== name; });
  }

  function text(problem) {
    return (problem && messages[problem.error]) || (problem && problem.message) || "Something went wrong. Try again.";
  }

  function stop(message) {
    $("stopped-text").textContent = message;
    show("stopped");
  }

  // call POSTs body (with the proof) to one of this session's routes and
  // resolves to the JSON answer, or rejects with the API's Problem.
  function call(path, body) {
    var payload = Object.assign({}, proof, body || {});
    return fetch("/v1/recovery/sessions/" + encodeURIComponent(sessionId) + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer"
    }).then(function (resp) {
      return resp.json().catch(function () { return null; }).then(function (data) {
        if (!resp.ok) {
          throw (data && data.error) ? data : { error: "http_" + resp.status, message: "The server answered " + resp.status + "." };
        }
        return data;
      });
    }, function () {
      throw { error: "network", message: "The server cannot be reached. Check the connection and try again." };
    });
  }

  // base64url (RFC 4648 §5, no padding) to and from bytes, as WebAuthn's
  // JSON forms write binary members.
  function fromB64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64u(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // parseRequestOptions is PublicKeyCredential.parseRequestOptionsFromJSON
  // (WebAuthn L3 §5.1.9) where the browser has it, else the same
  // conversion of the binary members: challenge and allowCredentials[].id.
  function parseRequestOptions(json) {
    if (window.PublicKeyCredential && typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = fromB64u(json.challenge);
    if (json.allowCredentials) {
      o.allowCredentials = json.allowCredentials.map(function (c) {
        return Object.assign({}, c, { id: fromB64u(c.id) });
      });
    }
    return o;
  }

  // credentialJSON is PublicKeyCredential.toJSON() (WebAuthn L3 §5.1.4,
  // AuthenticationResponseJSON) where the browser has it, else built.
  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") {
      try { return cred.toJSON(); } catch (e) { /* build it below */ }
    }
    var r = cred.response;
    var out = {
      id: cred.id,
      rawId: toB64u(cred.rawId),
      type: cred.type,
      response: {
        clientDataJSON: toB64u(r.clientDataJSON),
        authenticatorData: toB64u(r.authenticatorData),
        signature: toB64u(r.signature)
      },
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
    if (r.userHandle) { out.response.userHandle = toB64u(r.userHandle); }
    if (cred.authenticatorAttachment) { out.authenticatorAttachment = cred.authenticatorAttachment; }
    return out;
  }

  // onRPID reports whether this page's host may use passkeys of rpId: it
  // is rpId or one of its subdomains, the check the browser makes before
  // it asks a passkey (WebAuthn L3 §5.1.4.1, "registrable domain suffix").
  // A page opened at another address (an IP address, a copy of the link
  // on another host) cannot, and retrying there would not help: the page
  // stops instead of asking for the passkey.
  function onRPID(rpId) {
    var host = location.hostname.toLowerCase();
    rpId = String(rpId).toLowerCase();
    return host === rpId || host.slice(-(rpId.length + 1)) === "." + rpId;
  }

  function failed(problem, retry) {
    if (final.indexOf(problem.error) >= 0) {
      stop(text(problem));
      return;
    }
    if (problem.error === "bad_recovery_secret" && proof && proof.code !== undefined) {
      $("code-problem").textContent = text(problem);
      $("code-problem").hidden = false;
      show("code");
      return;
    }
    $("approve-problem").textContent = text(problem);
    $("approve-problem").hidden = false;
    $("approve-retry").hidden = !retry;
    show("approve");
  }

  function describe() {
    show("loading");
    call("/describe").then(function (d) {
      $("d-user").textContent = d.username;
      $("d-desktop").textContent = d.desktopName;
      $("d-ip").textContent = d.desktopIp || "unknown";
      $("d-time").textContent = new Date(d.createdAt).toLocaleString();
      var box = $("numbers");
      box.textContent = "";
      d.candidates.forEach(function (n) {
        var b = document.createElement("button");
        b.type = "button";
        b.textContent = String(n);
        b.addEventListener("click", function () {
          // One tap, one approval: a second would begin another one.
          box.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
          picked = n;
          approve();
        });
        box.appendChild(b);
      });
      show("describe");
    }, function (p) { failed(p, false); });
  }

  // approve picks the number, then asks the passkey; a cancelled or
  // failed passkey prompt may be retried (a new challenge each time).
  function approve() {
    $("approve-problem").hidden = true;
    $("approve-retry").hidden = true;
    show("approve");
    call("/approve/begin", { number: picked }).then(function (begin) {
      if (!window.PublicKeyCredential || !navigator.credentials) {
        throw { error: "no_webauthn", message: "This browser cannot use passkeys. Open the link in your phone's main browser." };
      }
      if (begin.publicKey.rpId && !onRPID(begin.publicKey.rpId)) {
        throw { error: "wrong_address" };
      }
      return navigator.credentials.get({ publicKey: parseRequestOptions(begin.publicKey) }).then(function (cred) {
        return call("/approve/finish", { ceremonyId: begin.ceremonyId, credential: credentialJSON(cred) });
      }, function (e) {
        if (e && e.name === "SecurityError") {
          throw { error: "wrong_address" };
        }
        throw { error: "passkey_" + (e && e.name), message: "The passkey did not answer (" + ((e && e.name) || "error") + "). Try again." };
      });
    }).then(function () {
      show("done");
    }, function (p) { failed(p, true); });
  }

  $("approve-retry").addEventListener("click", approve);
  $("deny").addEventListener("click", function () {
    call("/refuse").then(function () {
      stop("Stopped. Nobody can use this request now. If someone is trying to get into your account, tell your helpdesk.");
    }, function (p) { failed(p, false); });
  });
  $("code-submit").addEventListener("click", function () {
    proof = { code: $("code-input").value };
    $("code-problem").hidden = true;
    describe();
  });
  $("code-input").addEventListener("keydown", function (e) {
    if (e.key === "Enter") { $("code-submit").click(); }
  });

  if (!sessionId) {
    stop(messages.recovery_not_found);
  } else if (proof) {
    describe();
  } else {
    show("code");
  }
})();
