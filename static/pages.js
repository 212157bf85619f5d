// The table of pages: it drives both the navigation and the routes. Adding a page is one
// module under pages/ and one row here.
//   path:  the hash route; ":name" segments become params (e.g. users/:id)
//   title: the document title and, unless nav is false, the navigation label
//   nav:   shown in the navigation (false for detail pages; `under` names the entry they belong to)
//   admin: only Grafana Admins see it in the navigation; anyone may still open it, and the
//          page names the missing permission when the server answers 403
//   permission: what the page's first read needs, named when the server does not say
//   load:  the page's module; its default export renders into #view and resolves once the
//          page's data is shown (the router sets aria-busy until then). It gets { params,
//          page, query }: query is the URLSearchParams after "?" in the hash
//          (#/audit?action=users:*), the page's state that a link can carry.
export const PAGES = [
  { path: 'overview', title: 'Overview', nav: true, admin: true, permission: 'server.stats:read', load: () => import('./pages/overview.js') },
  { path: 'account', title: 'My account', nav: true, admin: false, load: () => import('./pages/account.js') },
  { path: 'users', title: 'Users', nav: true, admin: true, permission: 'users:read', load: () => import('./pages/users.js') },
  { path: 'users/:id', title: 'User', nav: false, admin: true, permission: 'users:read', load: () => import('./pages/user.js') },
  { path: 'settings', title: 'Settings', nav: true, admin: true, permission: 'settings:read', load: () => import('./pages/settings.js') },
  { path: 'license', title: 'License', nav: true, admin: true, permission: 'licensing:read', load: () => import('./pages/license.js') },
  { path: 'encryption', title: 'Encryption', nav: true, admin: true, permission: 'encryption:admin', load: () => import('./pages/encryption.js') },
  { path: 'provisioning', title: 'Provisioning', nav: true, admin: true, permission: 'provisioning:reload', load: () => import('./pages/provisioning.js') },
  { path: 'alerts', title: 'Alerts', nav: true, admin: true, permission: 'alert.rules:read', load: () => import('./pages/alerts.js') },
  { path: 'access', title: 'Roles & service accounts', nav: true, admin: true, permission: 'roles:read', load: () => import('./pages/access.js') },
  { path: 'audit', title: 'Audit log', nav: true, admin: true, permission: 'audit:read', load: () => import('./pages/audit.js') },
  { path: 'roles/:uid', title: 'Role', nav: false, under: 'access', admin: true, permission: 'roles:read', load: () => import('./pages/role.js') },
];

// The landing page: the overview for Grafana Admins, "My account" for everyone else.
export const home = (me) => (me && me.isGrafanaAdmin ? 'overview' : 'account');

// Finds the page for a hash path ("users/7") and its params ({ id: "7" }).
export function match(path) {
  const parts = path.split('/').filter(Boolean);
  for (const page of PAGES) {
    const pat = page.path.split('/');
    if (pat.length !== parts.length) continue;
    const params = {};
    if (pat.every((seg, i) => (seg.startsWith(':') ? ((params[seg.slice(1)] = decodeURIComponent(parts[i])), true) : seg === parts[i]))) return { page, params };
  }
  return null;
}
