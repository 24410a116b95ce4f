"""Single sign-on with OpenID Connect (decision 0026): an organization's identity provider signs
its members in, gives them their role from a groups claim, and cuts off those it drops."""
