// Once django-otp-webauthn's script has created a passkey, go on to the page the button names
// (the passkeys list, or where the login was heading). Verification redirects by itself.
document.addEventListener("otp_webauthn.register_complete", (event) => {
  const done = event.target.dataset.doneUrl;
  if (done) window.location.assign(done);
});
