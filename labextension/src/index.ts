import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import {
  IDeath,
  IDeaths,
  IHaltAnswer,
  IHaltPlan,
  IOwnKernel,
  IPreviousServer,
  IReport
} from './shapes';

/**
 * The key the server extension puts into the page config: without it there is no
 * API to ask, and the plugin stays silent. The second key names the schema of its
 * death events on the server's event bus.
 */
const PAGE_CONFIG_KEY = 'kernelWizardApi';
const EVENTS_KEY = 'kernelWizardApiEvents';
const API = 'api/kernel-wizard';
/** Only without an event stream (a frontend older than JupyterLab 4): ask every 2 s. */
const POLL_MS = 2000;
/** Seconds of overlap between polls: a death can be stored with an earlier time. */
const OVERLAP_S = 60;

/**
 * Ask the server extension; the parsed JSON, or an Error with the server's one line.
 */
async function requestAPI<T>(
  settings: ServerConnection.ISettings,
  endPoint: string,
  init: RequestInit = {}
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API, endPoint);
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new Error((data && data.error) || `HTTP ${response.status}`);
  }
  return data as T;
}

/**
 * The open notebook whose kernel has this id, if any.
 */
function panelOf(
  tracker: INotebookTracker | null,
  kernelId: string | null
): NotebookPanel | null {
  if (!tracker || !kernelId) {
    return null;
  }
  const found = tracker.find(
    panel => panel.sessionContext.session?.kernel?.id === kernelId
  );
  return found ?? null;
}

function openNotebooks(tracker: INotebookTracker | null): number {
  if (!tracker) {
    return 1; // no tracker to ask (another frontend): keep asking the server
  }
  let n = 0;
  tracker.forEach(() => {
    n += 1;
  });
  return n;
}

function size(bytes: number | null): string {
  if (bytes === null || bytes === undefined) {
    return 'memory unknown';
  }
  const mib = bytes / (1 << 20);
  return mib >= 1024
    ? `${(mib / 1024).toFixed(1)} GiB`
    : `${mib.toFixed(0)} MiB`;
}

function duration(seconds: number | null): string {
  if (seconds === null || seconds === undefined) {
    return 'unknown';
  }
  if (seconds < 120) {
    return `${Math.round(seconds)} s`;
  }
  if (seconds < 7200) {
    return `${Math.round(seconds / 60)} min`;
  }
  return `${(seconds / 3600).toFixed(1)} h`;
}

function nameOf(k: { path: string | null; kernel_id: string }): string {
  return k.path ?? `kernel ${k.kernel_id.slice(0, 8)}`;
}

function listNode(
  className: string,
  items: { text: string; id: string }[]
): HTMLElement {
  const ul = document.createElement('ul');
  ul.className = className;
  for (const item of items) {
    const li = document.createElement('li');
    li.textContent = item.text;
    li.dataset.kernelId = item.id;
    ul.append(li);
  }
  return ul;
}

/**
 * The plan as the dialog shows it: what would be shut down, what it frees, and
 * what is left running and why.
 */
function planNode(plan: IHaltPlan): HTMLElement {
  const node = document.createElement('div');
  node.className = 'kernel-wizard-halt-plan';
  const head = document.createElement('p');
  if (plan.halt.length) {
    head.textContent =
      `Shut down ${plan.halt.length} kernel(s) idle for ${duration(plan.threshold)} ` +
      `or more, freeing about ${size(plan.freed_bytes)}:`;
  } else {
    head.textContent = `No kernel of this server has been idle for ${duration(plan.threshold)} or more.`;
  }
  node.append(head);
  if (plan.halt.length) {
    node.append(
      listNode(
        'kernel-wizard-halt-list',
        plan.halt.map((k: IOwnKernel) => ({
          id: k.kernel_id,
          text: `${nameOf(k)}: ${size(k.rss_bytes)}, idle for ${duration(k.idle_seconds)}`
        }))
      )
    );
  }
  if (plan.left.length) {
    const left = document.createElement('p');
    left.textContent = 'Left running:';
    node.append(
      left,
      listNode(
        'kernel-wizard-left-list',
        plan.left.map(k => ({
          id: k.kernel_id,
          text: `${nameOf(k)}: ${k.reason}`
        }))
      )
    );
  }
  return node;
}

async function haltIdle(
  settings: ServerConnection.ISettings,
  spare: string[]
): Promise<void> {
  const query = spare.map(id => `spare=${encodeURIComponent(id)}`).join('&');
  let plan: IHaltPlan;
  try {
    plan = await requestAPI<IHaltPlan>(
      settings,
      'halt-idle' + (query ? `?${query}` : '')
    );
  } catch (err) {
    Notification.error(
      `Could not list idle kernels: ${(err as Error).message}`,
      { autoClose: 8000 }
    );
    return;
  }
  const buttons = plan.halt.length
    ? [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: `Halt ${plan.halt.length}` })
      ]
    : [Dialog.okButton({ label: 'Close' })];
  const choice = await showDialog({
    title: 'Halt idle kernels?',
    body: new Widget({ node: planNode(plan) }),
    buttons
  });
  if (!plan.halt.length || !choice.button.accept) {
    return; // nothing happens unless the user confirms
  }
  const id = Notification.emit('Halting idle kernels…', 'in-progress', {
    autoClose: false
  });
  try {
    const answer = await requestAPI<IHaltAnswer>(settings, 'halt-idle', {
      method: 'POST',
      body: JSON.stringify({
        kernel_ids: plan.halt.map(k => k.kernel_id),
        spare
      })
    });
    const names = (list: IOwnKernel[]) => list.map(nameOf).join(', ');
    let message = answer.halted.length
      ? `Halted ${answer.halted.length} idle kernel(s), freeing about ${size(answer.freed_bytes)}: ${names(answer.halted)}.`
      : 'No kernel was halted.';
    if (answer.kept.length) {
      message += ` Left running (active again): ${names(answer.kept)}.`;
    }
    if (answer.failed.length) {
      message += ` Failed: ${answer.failed.map(k => `${nameOf(k)} (${k.reason})`).join(', ')}.`;
    }
    Notification.update({
      id,
      message,
      type: answer.failed.length ? 'warning' : 'success',
      autoClose: 8000
    });
  } catch (err) {
    Notification.update({
      id,
      message: `Halting idle kernels failed: ${(err as Error).message}`,
      type: 'error',
      autoClose: 8000
    });
  }
}

async function showDetails(
  settings: ServerConnection.ISettings,
  death: IDeath
): Promise<void> {
  const node = document.createElement('div');
  const link = document.createElement('a');
  link.href = death.url ?? '';
  link.target = '_blank';
  link.rel = 'noopener';
  link.className = 'kernel-wizard-details-link';
  link.textContent = `What to do: ${death.url}`;
  const pre = document.createElement('pre');
  pre.className = 'kernel-wizard-details';
  pre.textContent =
    `${death.summary}.` +
    (death.detail ? `\nHow it is known: ${death.detail}.` : '') +
    '\n\nRunning python -m wizard -v…';
  node.append(link, pre);
  const body = new Widget({ node });
  const dialog = showDialog({
    title: 'Why the kernel died',
    body,
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
  try {
    const report = await requestAPI<IReport>(settings, 'report');
    pre.textContent = `${death.summary}.\n\n${report.text}`;
  } catch (err) {
    pre.textContent = `${death.summary}.\n\nThe wizard could not run: ${(err as Error).message}`;
  }
  await dialog;
}

/** One notification per notebook: its id and how many deaths it tells of. */
interface INote {
  id: string;
  count: number;
}

function announce(
  settings: ServerConnection.ISettings,
  notes: Map<string, INote>,
  death: IDeath
): void {
  const spare = death.kernel_id ? [death.kernel_id] : [];
  const url = death.url ?? '';
  const actions = [
    {
      label: 'What to do',
      caption: url,
      displayType: 'link' as const,
      callback: (event: MouseEvent) => {
        event.preventDefault(); // keep the notification
        window.open(url, '_blank', 'noopener');
      }
    },
    {
      label: 'Halt idle kernels',
      caption:
        'Lists the idle kernels of this server first; a busy one is never halted',
      callback: (event: MouseEvent) => {
        event.preventDefault();
        void haltIdle(settings, spare);
      }
    },
    {
      label: 'Details',
      caption: 'The evidence, as python -m wizard -v shows it',
      displayType: 'accent' as const,
      callback: (event: MouseEvent) => {
        event.preventDefault();
        void showDetails(settings, death);
      }
    }
  ];
  const key = death.notebook ?? death.kernel_id ?? 'kernel';
  const note = notes.get(key);
  const count = (note?.count ?? 0) + 1;
  const message =
    count > 1
      ? `${death.summary}. Its kernel has died ${count} times since this page opened.`
      : `${death.summary}.`;
  if (
    note &&
    Notification.update({
      id: note.id,
      message,
      type: 'error',
      autoClose: false,
      actions
    })
  ) {
    note.count = count;
    return;
  }
  const id = Notification.emit(message, 'error', {
    autoClose: false,
    actions
  });
  notes.set(key, { id, count });
}

/** localStorage key: the start of the server whose previous server was told of. */
const PREVIOUS_KEY = 'kernel-wizard:previous-told';

/**
 * Once per server start (not per page load): what ended the server before this
 * one, when it stopped without shutting its kernels down.
 */
async function tellPrevious(
  settings: ServerConnection.ISettings
): Promise<void> {
  let prev: IPreviousServer;
  try {
    prev = await requestAPI<IPreviousServer>(settings, 'previous');
  } catch {
    return; // an older server extension, or not read yet: nothing to tell
  }
  const started = String(prev.started);
  try {
    if (
      !prev.message ||
      window.localStorage.getItem(PREVIOUS_KEY) === started
    ) {
      return;
    }
    window.localStorage.setItem(PREVIOUS_KEY, started);
  } catch {
    // no localStorage (private mode): tell it on each page load
    if (!prev.message) {
      return;
    }
  }
  const url = prev.url;
  Notification.emit(prev.message, 'warning', {
    autoClose: false,
    actions: [
      {
        label: 'What to do',
        caption: url,
        displayType: 'link',
        callback: (event: MouseEvent) => {
          event.preventDefault(); // keep the notification
          window.open(url, '_blank', 'noopener');
        }
      }
    ]
  });
}

/**
 * Names the cause when a notebook's kernel dies.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'kernel-wizard:plugin',
  description:
    'Names the cause when a kernel dies, with what to do about it (needs wizard.server_ext).',
  autoStart: true,
  optional: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker | null) => {
    if (!PageConfig.getOption(PAGE_CONFIG_KEY)) {
      return; // no server extension: nothing to ask
    }
    const settings = app.serviceManager.serverSettings;
    void tellPrevious(settings);
    const notes = new Map<string, INote>();
    const seen = new Set<string>();

    const handle = (death: IDeath): void => {
      const key = `${death.kernel_id}:${death.time}`;
      if (seen.has(key) || !death.notify) {
        return; // told already, or asked for
      }
      seen.add(key);
      if (tracker && !panelOf(tracker, death.kernel_id)) {
        return; // not a notebook open here
      }
      announce(settings, notes, death);
    };

    // JupyterLab 4 and Notebook 7: the server pushes each death on its event bus.
    const schema = PageConfig.getOption(EVENTS_KEY);
    const events = app.serviceManager.events;
    if (schema && events) {
      events.stream.connect((_, emission) => {
        if (emission.schema_id === schema) {
          handle(emission as unknown as IDeath);
        }
      });
      return;
    }

    // Without an event stream: ask, while a notebook is open and the page visible.
    let since: number | null = null;
    let busy = false;
    const poll = async (): Promise<void> => {
      if (busy || document.hidden || openNotebooks(tracker) === 0) {
        return;
      }
      busy = true;
      try {
        const query = since === null ? '' : `?since=${since - OVERLAP_S}`;
        const answer = await requestAPI<IDeaths>(settings, `deaths${query}`);
        for (const death of answer.deaths) {
          if (since === null) {
            seen.add(`${death.kernel_id}:${death.time}`); // before this page was open
          } else {
            handle(death);
          }
        }
        since = answer.now;
      } catch {
        // The server is away or restarting: ask again at the next poll.
      } finally {
        busy = false;
      }
    };
    void poll();
    window.setInterval(() => void poll(), POLL_MS);
  }
};

export default plugin;
