// "Get notified of new stories": a click (never a prompt on page load) registers the service
// worker, subscribes with the service's VAPID key and posts the subscription through the site.
(function () {
  const box = document.getElementById('notify');
  if (!box || box.dataset.feature !== '1') return;
  const button = document.getElementById('notify-toggle');
  const status = document.getElementById('notify-status');
  const csrf = box.dataset.csrf;
  const supported = 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

  function show(text, on) {
    status.textContent = text;
    button.textContent = on ? 'Turn off notifications' : 'Get notified of new stories';
    button.dataset.on = on ? '1' : '';
  }
  function keyBytes(base64url) {
    const padded = (base64url + '==='.slice((base64url.length + 3) % 4)).replace(/-/g, '+').replace(/_/g, '/');
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }
  async function state() { return (await fetch('/notifications/state', { credentials: 'same-origin' })).json(); }
  async function current() {
    const registration = await navigator.serviceWorker.getRegistration('/');
    const subscription = registration && await registration.pushManager.getSubscription();
    if (!subscription) return null;
    const mine = (await state()).subscriptions || [];
    return { subscription, stored: mine.find((s) => s.endpoint === subscription.endpoint) };
  }
  function topics(list) { return 'Notifications are on for: ' + list.join(', ') + '.'; }

  async function turnOn() {
    if (await Notification.requestPermission() !== 'granted') {
      show('Notifications are blocked for this site in your browser settings.', false);
      return;
    }
    await navigator.serviceWorker.register('/sw.js', { scope: '/' });
    const registration = await navigator.serviceWorker.ready;
    const info = await state();
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: keyBytes(info.vapid_key),
    });
    const response = await fetch('/notifications/subscriptions', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrf },
      body: JSON.stringify(subscription.toJSON()),
    });
    const body = await response.json();
    if (!response.ok) {
      await subscription.unsubscribe();
      show((body.error && body.error.message) || 'Notifications could not be turned on.', false);
      return;
    }
    show(topics(body.topics), true);
  }

  async function turnOff() {
    const found = await current();
    if (found && found.stored) {
      await fetch('/notifications/subscriptions/' + encodeURIComponent(found.stored.id), {
        method: 'DELETE', credentials: 'same-origin', headers: { 'X-CSRFToken': csrf },
      });
    }
    if (found) await found.subscription.unsubscribe();
    show('Notifications are off.', false);
  }

  button.addEventListener('click', async () => {
    button.disabled = true;
    try { await (button.dataset.on ? turnOff() : turnOn()); }
    catch (error) { show('Notifications could not be changed: ' + error.message, false); }
    finally { button.disabled = false; }
  });

  if (!supported) { show('This browser cannot show notifications.', false); button.disabled = true; return; }
  current().then((found) => { if (found && found.stored) show(topics(found.stored.topics), true); })
    .catch(() => {});
  box.hidden = false;
})();
