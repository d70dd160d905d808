"""
Dynamic authenticators for wampd, ready to plug in:

- ``examples.auth.jwt_authenticator:JwtAuthenticator``: the WAMP ticket is a
  JWT (HS256) issued by your web application or identity provider.
- ``examples.auth.cookie_authenticator:CookieAuthenticator``: the browser's
  session cookie of your web application, looked up in its session store.

See ``examples/auth/README.md``.
"""
