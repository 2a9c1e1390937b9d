// Uketsuke console: the few things server-rendered screens cannot do alone — passkey
// ceremonies, live updates of the reception list, and JSON forms against /api/console.
// Every state-changing call carries the CSRF header the server requires.
'use strict';

(() => {
  const ja = document.documentElement.lang !== 'en';
  const say = (jaText, enText) => (ja ? jaText : enText);

  // ---- base64url <-> bytes (WebAuthn's binary fields) ----
  const fromB64 = (text) => {
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  };
  const toB64 = (buffer) => {
    const bytes = new Uint8Array(buffer);
    let text = '';
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };

  const api = async (url, method, body) => {
    const init = {
      method,
      credentials: 'same-origin',
      headers: { 'x-uketsuke-csrf': '1', accept: 'application/json' },
    };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    let data = null;
    const type = response.headers.get('content-type') || '';
    if (type.includes('application/json')) data = await response.json().catch(() => null);
    return { ok: response.ok, status: response.status, data };
  };

  const message = (el, text, good) => {
    if (!el) return;
    el.textContent = text;
    el.classList.toggle('good', !!good);
    el.classList.toggle('bad', !good);
  };

  const announce = (text) => {
    const region = document.getElementById('announce');
    if (region) region.textContent = text;
  };

  // Refusals that need words, not only a code (uketsuke_domain::text).
  const explained = {
    text_bidi_control: ['文字の向きを変える見えない制御文字が含まれています。貼り付けた文字を削除し、直接入力し直してください。',
      'The text contains an invisible character that changes the text direction. Delete the pasted text and type it again.'],
    range_too_large: ['この期間の受付は一度に書き出せる数（5,000件）を超えています。期間を短くしてください。',
      'This range holds more receptions than one file may (5,000). Choose a shorter range.'],
    text_zero_width: ['幅のない見えない文字が含まれています。貼り付けた文字を削除し、直接入力し直してください。',
      'The text contains an invisible zero-width character. Delete the pasted text and type it again.'],
    visit_date_past: ['受診日が過ぎています。今日以降の日付を選んでください。',
      'The visit date has passed. Choose today or a later date.'],
    visit_date_too_far: ['受診日は90日先までです。それより先の予約には、受診日の90日前からリンクを作ってください。',
      'The visit date may be at most 90 days ahead. For a later appointment, make the link within 90 days of it.'],
  };
  const errorText = (result) => {
    const code = (result.data && result.data.error) || `http_${result.status}`;
    const words = explained[code];
    if (words) return say(`${words[0]}（${code}）`, `${words[1]} (${code})`);
    return say(`できませんでした（${code}）`, `Not done (${code})`);
  };

  // ---- forms that call the JSON API ----
  const formBody = (form) => {
    const body = {};
    let fields = 0;
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      if (el.type === 'checkbox' && el.dataset.type === 'list') {
        // A group of boxes with one name: the values of the ticked ones (an empty list too).
        if (!Array.isArray(body[el.name])) body[el.name] = [];
        if (el.checked) body[el.name].push(el.value);
      } else if (el.type === 'checkbox') {
        body[el.name] = el.checked;
      } else if (el.type === 'radio') {
        if (el.checked) body[el.name] = el.value === 'true' ? true : el.value === 'false' ? false : el.value;
      } else if (el.value === '') {
        continue;
      } else if (el.dataset.type === 'number') {
        body[el.name] = Number(el.value);
      } else {
        body[el.name] = el.value;
      }
      fields += 1;
    }
    return fields ? body : undefined;
  };

  document.addEventListener('submit', async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const out = form.querySelector('.form-message');
    const button = form.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    try {
      const result = await api(form.dataset.api, form.dataset.method || 'POST', formBody(form));
      if (result.status === 401) {
        window.location.href = `/console/signin?next=${encodeURIComponent(location.pathname + location.search)}`;
        return;
      }
      if (!result.ok) {
        message(out, errorText(result), false);
        return;
      }
      if (form.dataset.show && result.data && result.data[form.dataset.show]) {
        message(out, '', true);
        const text = document.createElement('input');
        text.type = 'text';
        text.readOnly = true;
        text.value = result.data[form.dataset.show];
        text.setAttribute('aria-label', say('登録用リンク（24時間有効・1回限り）', 'Enrolment link (24 hours, single use)'));
        out.append(say('登録用リンク（24時間有効・1回限り）: ', 'Enrolment link (24 hours, single use): '), text);
        text.select();
        return;
      }
      if (form.dataset.reload) {
        window.location.reload();
        return;
      }
      message(out, say('保存しました', 'Saved'), true);
    } catch (error) {
      message(out, say('通信できませんでした。もう一度お試しください。', 'Network error. Please try again.'), false);
    } finally {
      if (button) button.disabled = false;
    }
  });

  // ---- bulk 照会番号: a CSV file posted as it is, a result per row ----
  const uploadReasons = {
    columns_invalid: ['列の数が違います（受付番号, 照会番号 の2列）', 'Wrong number of columns (reception number, patient number)'],
    key_missing: ['受付番号も受付IDもありません', 'No reception number or ID'],
    reception_unknown: ['この医療機関にその受付はありません', 'No such reception at this institution'],
    reception_ambiguous: ['同じ受付番号の受付が複数あります。受付IDで指定してください', 'Several receptions have this number: use the reception ID'],
    patient_ref_missing: ['照会番号が空です', 'The patient number is empty'],
    patient_ref_invalid: ['照会番号が長すぎるか、使えない文字を含みます（32文字まで）', 'The patient number is too long or has characters not allowed (32 at most)'],
    duplicate_in_file: ['同じ受付がファイルの前の行にあります', 'The same reception is on an earlier line'],
    file_empty: ['ファイルにデータ行がありません', 'The file has no data rows'],
    file_too_large: ['ファイルが大きすぎます（64KBまで）', 'The file is too large (64 KB at most)'],
    file_encoding_unknown: ['UTF-8でもShift_JISでもありません', 'The file is neither UTF-8 nor Shift_JIS'],
    file_malformed: ['CSVとして読めません', 'The file is not valid CSV'],
    header_invalid: ['見出し行に「受付番号」か「受付ID」がありません', 'The header row names neither 受付番号 nor 受付ID'],
    too_many_rows: ['行が多すぎます（5000行まで）', 'Too many rows (5,000 at most)'],
  };
  const uploadReason = (code) => {
    const words = uploadReasons[code];
    return words ? say(words[0], words[1]) : code;
  };
  const uploadResult = (slot, data) => {
    slot.textContent = '';
    const summary = document.createElement('p');
    summary.dataset.testid = 'upload-summary';
    summary.textContent = say(
      `登録 ${data.applied}件・変更なし ${data.unchanged}件・登録できない行 ${data.refused}件`,
      `${data.applied} applied, ${data.unchanged} unchanged, ${data.refused} refused`,
    );
    slot.append(summary);
    const table = document.createElement('table');
    table.dataset.testid = 'upload-rows';
    const head = table.createTHead().insertRow();
    for (const h of [say('行', 'Line'), say('受付番号・受付ID', 'Reception'), say('照会番号', 'Patient number'), say('結果', 'Result')]) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = h;
      head.append(th);
    }
    const body = table.createTBody();
    const words = { applied: say('登録しました', 'Applied'), unchanged: say('変更なし', 'Unchanged'), refused: say('登録できません', 'Refused') };
    for (const row of data.rows) {
      const tr = body.insertRow();
      tr.dataset.result = row.result;
      tr.dataset.testid = 'upload-row';
      const result = words[row.result] + (row.reason ? `: ${uploadReason(row.reason)}` : '');
      for (const text of [String(row.line), row.key, row.patient_ref, result]) tr.insertCell().textContent = text;
    }
    const wrap = document.createElement('div');
    wrap.className = 'table-wrap';
    wrap.append(table);
    slot.append(wrap);
  };
  for (const form of document.querySelectorAll('form[data-upload]')) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const out = form.querySelector('.form-message');
      const slot = form.parentElement.querySelector('.upload-result');
      const file = form.querySelector('input[type=file]').files[0];
      if (!file) return;
      if (file.size > 64 * 1024) {
        message(out, uploadReason('file_too_large'), false);
        return;
      }
      const button = form.querySelector('button[type=submit]');
      button.disabled = true;
      try {
        const response = await fetch(form.dataset.upload, {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'x-uketsuke-csrf': '1', 'content-type': 'text/csv', accept: 'application/json' },
          body: await file.arrayBuffer(),
        });
        const data = await response.json().catch(() => null);
        if (!response.ok) {
          const code = (data && data.error) || `http_${response.status}`;
          message(out, `${uploadReason(code)}（${code}）`, false);
          if (slot) slot.textContent = '';
          return;
        }
        message(out, '', true);
        if (slot) uploadResult(slot, data);
        announce(say('照会番号を登録しました', 'Patient numbers processed'));
      } catch (error) {
        message(out, say('通信できませんでした。もう一度お試しください。', 'Network error. Please try again.'), false);
      } finally {
        button.disabled = false;
      }
    });
  }

  // ---- sign-out ----
  for (const button of document.querySelectorAll('[data-signout]')) {
    button.addEventListener('click', async () => {
      const everywhere = button.dataset.signout === 'everywhere';
      await api(everywhere ? '/api/console/signout-everywhere' : '/api/console/signout', 'POST').catch(() => null);
      window.location.href = '/console/signin';
    });
  }

  // ---- passkey sign-in ----
  const signIn = async () => {
    const start = await api('/api/console/signin/start', 'POST');
    if (!start.ok) throw new Error('start');
    const options = start.data.options.publicKey;
    options.challenge = fromB64(options.challenge);
    for (const c of options.allowCredentials || []) c.id = fromB64(c.id);
    const credential = await navigator.credentials.get({ publicKey: options });
    const r = credential.response;
    const finish = await api('/api/console/signin/finish', 'POST', {
      ceremony: start.data.ceremony,
      credential: {
        id: credential.id,
        rawId: toB64(credential.rawId),
        type: credential.type,
        response: {
          authenticatorData: toB64(r.authenticatorData),
          clientDataJSON: toB64(r.clientDataJSON),
          signature: toB64(r.signature),
          userHandle: r.userHandle ? toB64(r.userHandle) : null,
        },
        extensions: {},
      },
    });
    if (!finish.ok) throw new Error('finish');
  };

  const signinButton = document.getElementById('signin');
  if (signinButton) {
    const out = document.getElementById('signin-message');
    signinButton.addEventListener('click', async () => {
      if (!window.PublicKeyCredential) {
        message(out, out.dataset.unsupported, false);
        return;
      }
      signinButton.disabled = true;
      try {
        await signIn();
        window.location.href = signinButton.dataset.next || '/console';
      } catch (error) {
        message(out, out.dataset.failed, false);
      } finally {
        signinButton.disabled = false;
      }
    });
  }

  // ---- demo: enrol a passkey for a demo account ----
  for (const button of document.querySelectorAll('[data-demo-enrol]')) {
    button.addEventListener('click', async () => {
      const result = await api('/api/console/demo/enrolment-code', 'POST', { account: button.dataset.demoEnrol });
      if (result.ok && result.data.link) {
        window.location.href = result.data.link;
      } else {
        message(document.getElementById('demo-message'), errorText(result), false);
      }
    });
  }

  // ---- passkey enrolment (/console/enrol#CODE) ----
  const enrolButton = document.getElementById('enrol');
  if (enrolButton) {
    const out = document.getElementById('enrol-message');
    const who = document.getElementById('enrol-account');
    const code = decodeURIComponent(location.hash.replace(/^#/, ''));
    // The code is no longer needed in the address once read.
    history.replaceState(null, '', location.pathname + location.search);
    (async () => {
      const start = code ? await api('/api/console/enrol/start', 'POST', { code }) : { ok: false };
      if (!start.ok) {
        who.textContent = '';
        message(out, out.dataset.invalid, false);
        return;
      }
      const account = start.data.account;
      const institution = ja ? account.institution_name_ja : account.institution_name_en;
      who.textContent = `${out.dataset.for}${account.name} (${account.id}) — ${institution}`;
      enrolButton.hidden = false;
      enrolButton.addEventListener('click', async () => {
        enrolButton.disabled = true;
        try {
          const options = start.data.options.publicKey;
          options.challenge = fromB64(options.challenge);
          options.user.id = fromB64(options.user.id);
          for (const c of options.excludeCredentials || []) c.id = fromB64(c.id);
          const credential = await navigator.credentials.create({ publicKey: options });
          const r = credential.response;
          const finish = await api('/api/console/enrol/finish', 'POST', {
            code,
            credential: {
              id: credential.id,
              rawId: toB64(credential.rawId),
              type: credential.type,
              response: {
                attestationObject: toB64(r.attestationObject),
                clientDataJSON: toB64(r.clientDataJSON),
                transports: r.getTransports ? r.getTransports() : undefined,
              },
              extensions: {},
            },
          });
          if (!finish.ok) throw new Error('finish');
          message(out, say('登録しました。サインインします…', 'Registered. Signing in…'), true);
          await signIn();
          window.location.href = '/console';
        } catch (error) {
          message(out, out.dataset.failed, false);
          enrolButton.disabled = false;
        }
      });
    })();
  }

  // ---- live reception list ----
  const live = document.querySelector('[data-live]');
  if (live && window.EventSource) {
    let timer = null;
    const refresh = async () => {
      timer = null;
      const response = await fetch(location.href, { credentials: 'same-origin', headers: { accept: 'text/html' } });
      if (response.redirected || !response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), 'text/html');
      const fresh = doc.getElementById(live.id);
      const count = doc.querySelector('[data-testid=count]');
      if (!fresh) return;
      live.innerHTML = fresh.innerHTML;
      const here = document.querySelector('[data-testid=count]');
      if (here && count) here.textContent = count.textContent;
      countdowns();
      announce(say('受付一覧が更新されました', 'The reception list was updated'));
    };
    const source = new EventSource(live.dataset.live);
    source.addEventListener('receptions', () => {
      if (!timer) timer = setTimeout(refresh, 250);
    });
    source.addEventListener('signed_out', () => {
      source.close();
      window.location.href = `/console/signin?next=${encodeURIComponent(location.pathname + location.search)}`;
    });
  }

  // ---- countdown in the last hour of a window ----
  const countdowns = () => {
    const now = Date.now();
    for (const time of document.querySelectorAll('time[data-window-end]')) {
      const left = Date.parse(time.dataset.windowEnd) - now;
      const slot = time.parentElement.querySelector('.countdown');
      if (!slot) continue;
      if (left <= 0) {
        slot.textContent = say('（期限切れ）', ' (closed)');
        slot.className = 'countdown closed';
      } else if (left <= 3600 * 1000) {
        const minutes = Math.ceil(left / 60000);
        slot.textContent = say(`（あと${minutes}分）`, ` (${minutes} min left)`);
        slot.className = 'countdown soon';
      } else {
        slot.textContent = '';
      }
    }
  };
  countdowns();
  setInterval(countdowns, 30 * 1000);

  // ---- print sheet and snippet ----
  for (const button of document.querySelectorAll('[data-print]')) {
    button.addEventListener('click', () => window.print());
  }
  for (const button of document.querySelectorAll('[data-copy]')) {
    button.addEventListener('click', async () => {
      const field = document.getElementById(button.dataset.copy);
      if (!field) return;
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        announce(say('コピーしました', 'Copied'));
      } catch (error) {
        announce(say('選択しました。Ctrl+C でコピーしてください', 'Selected: press Ctrl+C to copy'));
      }
    });
  }
})();
