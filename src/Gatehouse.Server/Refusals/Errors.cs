namespace Gatehouse.Server.Refusals;

/// <summary>
/// Every refusal Gatehouse gives, in one place: HTTP status, contract code, audit reason and message. Endpoints write
/// them in the contract's envelope; console pages and operator commands show their message.
/// Messages tell the caller what to fix and never echo a credential back.
/// </summary>
internal static class Errors
{
    // 400000: the request itself is wrong.
    public static Refusal BadRequest(string reason, string message) => new(400, 400000, reason, message);
    public static readonly Refusal NotJson = BadRequest("content_type", "Content-Type must be application/json.");
    public static readonly Refusal BodyTooLarge = BadRequest("body_too_large", "The request body is larger than the limit this server accepts.");
    public static readonly Refusal BodyNotObject = BadRequest("body_not_object", "The request body must be a JSON object.");
    public static Refusal MalformedJson(string? path) =>
        BadRequest("malformed_json", path is null or "$" ? "The request body is not valid JSON." : $"The request body is not valid JSON for this endpoint at {path}.");
    public static Refusal FieldRequired(string field) => BadRequest("field_required", $"{field} is required.");
    public static Refusal FieldTooLong(string field, int max) => BadRequest("field_too_long", $"{field} must be at most {max} characters.");
    public static Refusal FieldHasHiddenCharacters(string field) => BadRequest("field_invalid_characters",
        $"{field} must not contain control, invisible (format) or unassigned characters.");

    // 400100: a credential is missing, wrong, expired or revoked. The SDK ends its session on this code.
    public static Refusal Unauthorized(string reason, string message) => new(401, 400100, reason, message);
    public static readonly Refusal ApiKeyMissing = Unauthorized("api_key_missing", "The x-api-key header is required.");
    public static readonly Refusal ApiKeyUnknown = Unauthorized("api_key_unknown", "The API key is not known to this server.");
    public static Refusal ApiKeyOfOtherRegion(string region, string host) =>
        Unauthorized("api_key_other_region", $"This API key belongs to region {region}; send it to {host}");
    public static readonly Refusal ServerKeyMissing = Unauthorized("server_key_missing", "The x-server-key header is required.");
    public static readonly Refusal ServerKeyInvalid = Unauthorized("server_key_invalid", "The server key is not valid.");
    public static readonly Refusal ServerKeyExpired = Unauthorized("server_key_expired", "The server key was replaced and its grace period has ended; use the newest server key.");
    public static readonly Refusal AuthTokenRequired = Unauthorized("auth_token_missing", "Secure mode is on for this network: authToken is required.");
    public static readonly Refusal AuthTokenInvalid = Unauthorized("auth_token_invalid", "The authToken is not valid.");
    public static readonly Refusal AuthTokenUsed = Unauthorized("auth_token_used",
        "This authToken was already used: this network accepts each auth token once. Mint a new one with the server key.");
    public static readonly Refusal AuthTokenKeyEnded = Unauthorized("auth_token_key_ended",
        "The server key that minted this authToken was replaced or has expired; mint a new one with the current server key.");
    public static readonly Refusal AuthTokenExpired = Unauthorized("auth_token_expired", "The authToken has expired; mint a new one with the server key.");
    public static readonly Refusal AuthTokenOtherUser = Unauthorized("auth_token_other_user", "The authToken was issued for another userId.");
    public static readonly Refusal AuthTokenOtherNetwork = Unauthorized("auth_token_other_network", "The authToken was issued for another network.");
    public static readonly Refusal BearerMissing = Unauthorized("access_token_missing", "An Authorization: Bearer access token is required.");
    public static readonly Refusal AccessTokenInvalid = Unauthorized("access_token_invalid", "The access token is not valid.");
    public static readonly Refusal AccessTokenExpired = Unauthorized("access_token_expired", "The access token has expired; create a new session.");
    public static readonly Refusal SessionEnded = Unauthorized("session_ended", "The session has ended; create a new session.");
    public static readonly Refusal RefreshTokenInvalid = Unauthorized("refresh_token_invalid", "The refresh token is not valid.");
    public static readonly Refusal RefreshTokenExpired = Unauthorized("refresh_token_expired", "The refresh token has expired; create a new session.");
    public static readonly Refusal SessionTooOld = Unauthorized("session_max_age", "The session has reached its maximum age; log in again.");
    public static readonly Refusal RefreshTokenReused = Unauthorized("refresh_token_reused", "The refresh token was already used; the session has been ended.");

    public static readonly Refusal AdminTokenMissing = Unauthorized("admin_token_missing", "The x-admin-token header is required.");
    public static readonly Refusal AdminTokenInvalid = Unauthorized("admin_token_invalid", "The admin token is not valid.");
    public static readonly Refusal AdminTokenRevoked = Unauthorized("admin_token_revoked", "The admin token was revoked.");
    public static readonly Refusal AdminTokenExpired = Unauthorized("admin_token_expired", "The admin token has expired (or its grace period after a replacement ended).");
    public static readonly Refusal AdminTokenNotPermitted = Unauthorized("admin_token_not_permitted",
        "The admin token's admin is disabled or no longer has the Access Secure Mode permission in this network.");

    // mTLS, when the network has it on: which condition failed.
    public static readonly Refusal MtlsNotTls = Unauthorized("mtls_not_tls", "mTLS is on for this network: call over HTTPS with the network's client certificate.");
    public static readonly Refusal MtlsNoCertificate = Unauthorized("mtls_no_certificate", "mTLS is on for this network: no client certificate was presented.");
    public static readonly Refusal MtlsExpired = Unauthorized("mtls_expired", "The client certificate has expired or is not yet valid.");
    public static readonly Refusal MtlsUntrusted = Unauthorized("mtls_untrusted", "The client certificate was not issued by this deployment's certificate authority.");
    public static readonly Refusal MtlsNotClientAuthentication = Unauthorized("mtls_not_client_auth", "The client certificate is not for client authentication.");
    public static readonly Refusal MtlsOtherNetwork = Unauthorized("mtls_other_network", "The client certificate was issued to another network.");
    public static readonly Refusal MtlsUnknown = Unauthorized("mtls_unknown", "The client certificate is not one of this network's certificates.");
    public static readonly Refusal MtlsRevoked = Unauthorized("mtls_revoked", "The client certificate was deleted from this network and is revoked.");

    // 4003xx: the caller is known but may not do this.
    public static readonly Refusal UserBanned = new(403, 400312, "user_banned", "The user is globally banned.");
    public static readonly Refusal Forbidden = new(403, 400300, "forbidden", "This credential may not do this.");
    public static readonly Refusal SecureModeRequired = new(403, 400300, "secure_mode_off", "Secure mode must be on for this network.");

    // 4889xx: visitors and bots (the 7.x SDK line) only read.
    public static readonly Refusal VisitorModeOff = new(403, 488999, "visitor_mode_off",
        "Visitors are not allowed in this network: an admin turns visitor mode on in the console (Settings · Integrations).");
    public static readonly Refusal BotModeOff = new(403, 488998, "bot_mode_off",
        "Bots are not allowed in this network: an admin turns bot mode on in the console (Settings · Integrations).");
    public static readonly Refusal VisitorNotPermitted = new(403, 488999, "visitor_not_permitted",
        "This user is a visitor: visitors only read, and can neither sign in nor be opened a session as a user.");
    public static readonly Refusal BotNotPermitted = new(403, 488998, "bot_not_permitted",
        "This user is a bot: bots only read, and can neither sign in nor be opened a session as a user.");
    public static readonly Refusal DeviceHasSignedInUser = new(403, 488999, "visitor_not_permitted",
        "This device's visitor or bot id belongs to a signed-in user; use another deviceId.");

    /// <summary>Why a user of this kind may not be changed as a user, or null for a signed-in user.</summary>
    public static Refusal? NotPermittedFor(Users.UserKind kind) => kind switch
    {
        Users.UserKind.Visitor => VisitorNotPermitted,
        Users.UserKind.Bot => BotNotPermitted,
        _ => null,
    };

    // A visitor's signature in secure mode (401 400100, like a bad auth token).
    public static readonly Refusal VisitorSignatureRequired = Unauthorized("visitor_signature_missing",
        "Secure mode is on for this network: authSignature and authSignatureExpiresAt are required, signed by your backend with the visitor secret.");
    public static readonly Refusal VisitorSignatureInvalid = Unauthorized("visitor_signature_invalid",
        "The authSignature does not match this deviceId and authSignatureExpiresAt under any of the network's visitor secrets.");
    public static readonly Refusal VisitorSignatureExpired = Unauthorized("visitor_signature_expired",
        "The authSignature has expired (authSignatureExpiresAt is in the past); sign a new one.");
    public static Refusal VisitorSignatureTooFarAhead(TimeSpan max) => Unauthorized("visitor_signature_too_long",
        $"authSignatureExpiresAt is more than {max.TotalHours:0.##} hours ahead; sign with a nearer expiry.");
    public static readonly Refusal VisitorSignatureTime = BadRequest("field_invalid",
        "authSignatureExpiresAt must be an ISO 8601 time with a time zone, such as 2026-12-01T10:00:00Z.");
    public static readonly Refusal VisitorSecretMissing = Unauthorized("visitor_secret_missing",
        "Secure mode is on and this network has no visitor secret yet: an admin generates one in the console (Settings · Integrations).");

    public static readonly Refusal NotFound = new(404, 400400, "not_found", "No such endpoint.");
    public static readonly Refusal MethodNotAllowed = new(405, 400000, "method_not_allowed", "This endpoint does not accept that HTTP method.");
    public static Refusal ItemNotFound(string what) => new(404, 400400, "not_found", $"{what} was not found.");
    public static readonly Refusal UserNotFound = new(404, 400400, "user_not_found", "The user was not found in this network.");

    // Console pages and operator commands: the same refusals, shown as their message.
    public static Refusal Invalid(string reason, string message) => new(400, 400000, reason, message);
    public static Refusal NotPermitted(string message) => new(403, 400301, "not_permitted", message);
    public static Refusal Conflict(string reason, string message) => new(409, 400900, reason, message);

    public static readonly Refusal CertificateNeedsSecureMode = Conflict("secure_mode_off", "Turn secure mode on before creating a certificate.");
    public static readonly Refusal CertificateNameRequired = Invalid("field_required", "A certificate name is required.");
    public static Refusal CertificateNameTooLong(int max) => Invalid("field_too_long", $"The certificate name can be at most {max} characters.");
    public static readonly Refusal CertificateNameHasControlCharacters = Invalid("field_invalid_characters", "The certificate name must not contain control characters.");
    public static readonly Refusal CsrRequired = Invalid("field_required", "A Certificate Signing Request (CSR) is required.");
    public static readonly Refusal CsrTooLarge = Invalid("field_too_long", "The CSR is too large.");
    public static readonly Refusal CsrInvalid = Invalid("csr_invalid", "The CSR is not a valid PEM certificate signing request, or its signature does not verify.");
    public static Refusal CsrRsaTooShort(int bits) => Invalid("csr_weak_key", $"RSA keys must be at least 2048 bits; this CSR's key has {bits}.");
    public static readonly Refusal CsrKeyKind = Invalid("csr_weak_key", "The CSR's key must be RSA (2048 bits or more) or ECDSA on P-256 or P-384.");
    public static readonly Refusal CsrCurve = Invalid("csr_weak_key", "ECDSA keys must use the P-256 or P-384 curve.");
    public static Refusal CertificateLimit(int max) => Conflict("certificate_limit", $"A network can have at most {max} active certificates. Delete one first.");
    public static Refusal CertificateNameTaken(string name) => Conflict("certificate_name_taken", $"This network already has a certificate named '{name}'.");
    public static readonly Refusal CertificateNotFound = new(404, 400400, "not_found", "There is no such certificate in this network.");
    public static readonly Refusal LastCertificateUnderMtls = Conflict("last_certificate",
        "This is the network's last active certificate and mTLS is on: add another certificate or turn mTLS off first.");
    public static readonly Refusal MtlsNeedsSecureMode = Conflict("secure_mode_off", "Turn secure mode on before mTLS.");
    public static readonly Refusal MtlsNeedsCertificate = Conflict("no_certificate", "Create a certificate before turning mTLS on: with none, every backend would be locked out.");

    public static Refusal NotAnEmail(string email) => Invalid("not_an_email", $"'{email.Trim()}' is not an email address.");
    public static Refusal AdminExists(string email) => Conflict("admin_exists", $"An admin with the email '{email}' already exists.");
    public static Refusal AdminNotFound(string email) => new(404, 400400, "not_found", $"No admin with the email '{email}'.");
    public static readonly Refusal WrongCredentials = Unauthorized("wrong_credentials", "The email or password is wrong.");
    public static Refusal LockedOut(int failures, DateTimeOffset until) =>
        new(403, 400301, "locked_out", $"This account is locked after {failures} failed sign-ins. Try again after {until:yyyy-MM-dd HH:mm} UTC.");
    public static readonly Refusal AccountDisabled = new(403, 400301, "account_disabled", "This account is disabled. Ask a super admin to enable it.");
    public static readonly Refusal SecondFactorWrong = Unauthorized("wrong_code", "The code is wrong or was already used.");
    public static readonly Refusal TwoFactorCodeWrong = Invalid("wrong_code",
        "The code does not match. Check the authenticator app shows Gatehouse for this account and the device's clock is right.");
    public static readonly Refusal TwoFactorAlreadyOn = Conflict("two_factor_on", "Two-factor sign-in is already on.");
    public static readonly Refusal TwoFactorNotStarted = Conflict("two_factor_not_started", "Start the set-up again: no authenticator is being set up.");
    public static readonly Refusal CurrentPasswordWrong = Invalid("wrong_password", "The current password is wrong.");
    public static Refusal PasswordLength(int min, int max) => Invalid("password_length", $"The new password must be {min} to {max} characters long.");
    public static readonly Refusal PasswordUnchanged = Invalid("password_unchanged", "The new password must differ from the current one.");
    public static readonly Refusal SuperAdminHasEveryNetwork = Conflict("super_admin", "A super admin already has every network.");
    public static Refusal AlreadyAdminOfNetwork(string email) => Conflict("already_admin", $"{email} is already an admin of this network.");
    public static readonly Refusal RequestAlreadyAnswered = Conflict("already_answered", "That request was already answered.");

    public static readonly Refusal SuperAdminHoldsNoToken = NotPermitted("A super admin cannot generate admin tokens.");
    public static readonly Refusal TokenNeedsActiveAdmin = NotPermitted("Only an active admin of this network can hold an admin token.");
    public static readonly Refusal TokenNeedsAdminRole = NotPermitted("Only an Admin of this network (not a Viewer) can hold an admin token.");
    public static readonly Refusal TokenNeedsSecureModeAccess = NotPermitted("Admin tokens need the Access Secure Mode permission.");
    public static readonly Refusal AdminTokenLifetime = Invalid("lifetime", "An admin token lasts between 1 and 365 days.");
    public static readonly Refusal AdminTokenNotFound = new(404, 400400, "not_found", "There is no such admin token in this network.");
    public static readonly Refusal NotTokenOwner = NotPermitted("Only the token's own admin or a super admin can revoke it.");

    // 500000: never says why, the log does.
    public static readonly Refusal Unavailable = new(503, 500000, "unavailable", "The database does not answer; try again shortly.");
    public static Refusal NotReady(string why) => new(503, 500000, "not_ready", why);
    public static readonly Refusal Starting = new(503, 500000, "starting", "Gatehouse is starting: the database does not answer yet; try again shortly.");

    public static Refusal TooManyRequests(int retryAfterSeconds) =>
        new(429, 429000, "rate_limited", "Too many requests; retry after the time in Retry-After.") { RetryAfterSeconds = retryAfterSeconds };
    public static readonly Refusal Internal = new(500, 500000, "internal", "The server could not complete the request.");
}
