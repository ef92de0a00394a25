// What a customer's web app does with the official SDK, exposed to the test as window.harness.
window.harness = (() => {
  const states = [];
  let client;
  let renewals = 0;

  // The SDK asks for renewal through this handler, like every app must provide.
  const sessionHandler = {
    sessionWillRenewAccessToken(renewal) {
      renewals += 1;
      if (window.nextAuthToken) {
        renewal.renewWithAuthToken(window.nextAuthToken);
      } else {
        renewal.renew();
      }
    },
  };

  const describe = (error) => ({ code: error && error.code, message: String(error && error.message) });
  // What an app observes: the states the SDK announced through onSessionStateChange (the last is the current one).
  const state = () => (states.length > 0 ? states[states.length - 1] : 'notLoggedIn');

  return {
    create(apiKey, apiUrl) {
      client = Amity.Client.createClient(apiKey, 'sg', { apiEndpoint: { http: apiUrl }, rteEnabled: false });
      Amity.Client.onSessionStateChange((state) => states.push(state));
      return client.sessionState;
    },
    async login(userId, displayName, authToken, deviceId) {
      const params = { userId, displayName };
      if (authToken) params.authToken = authToken;
      if (deviceId) params.deviceId = deviceId;
      try {
        const ok = await Amity.Client.login(params, sessionHandler, { disableRTE: true });
        return { ok, state: state(), userId: Amity.Client.getActiveUser().userId };
      } catch (error) {
        return { ok: false, state: state(), error: describe(error) };
      }
    },
    async me() {
      try {
        const { data } = await client.http.get('/api/v3/users/me');
        return { ok: true, userId: data.users[0].userId, displayName: data.users[0].displayName, state: state() };
      } catch (error) {
        return { ok: false, state: state(), error: describe(error) };
      }
    },
    async secureLogout() {
      try {
        return { ok: await Amity.Client.secureLogout(), state: state() };
      } catch (error) {
        return { ok: false, state: state(), error: describe(error) };
      }
    },
    state,
    states: () => states.slice(),
    accessToken: () => (client.token ? client.token.accessToken : null),
    renewals: () => renewals,
  };
})();
