// The news site's service worker: shows a story notification and opens the story on click.
// The story page goes through the paywall as any visit does: the worker only opens the URL.
self.addEventListener('push', (event) => {
  let story = {};
  try { story = event.data ? event.data.json() : {}; } catch (e) { story = {}; }
  const title = story.title || 'New story';
  event.waitUntil(self.registration.showNotification(title, {
    body: story.body || '',
    // One notification per story: a repeat replaces it rather than adding a second.
    tag: story.story_id || undefined,
    data: { url: story.url || '/' },
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || '/', self.location.origin);
  if (target.origin !== self.location.origin) return;  // only the site's own pages
  event.waitUntil(self.clients.openWindow(target.href));
});
