// Proof of reading. While the guideline page is open this reports, every 15 seconds and when the page
// is hidden or left, how far the text has been on screen (percent of its height, the furthest point)
// and for how many seconds the page was in view (services.record_progress caps both by the clock).
// Where the version requires reading to the end, the acknowledge button holds until the end of the
// text has been on screen and the server has it. Without this script the acknowledgement still
// works and records only when the text was opened; that is why it says "tracked" in the form.
(function () {
  const form = document.querySelector('form.ack-form[data-reading-url]')
  const text = document.getElementById('guideline-text')
  if (!form || !text) {
    return
  }
  const url = form.dataset.readingUrl
  const requireEnd = form.hasAttribute('data-require-end')
  const note = document.getElementById('reading-note')
  const button = form.querySelector('button[type="submit"]')
  const field = form.elements.reading
  let furthest = 0
  let reported = -1
  let visibleSince = document.visibilityState === 'visible' ? performance.now() : null
  let unreported = 0 // milliseconds in view not yet reported
  let unlocked = !requireEnd || form.hasAttribute('data-read-to-end')

  field.value = 'tracked'

  function percentShown () {
    const box = text.getBoundingClientRect()
    if (box.height <= 0) {
      return 100
    }
    const shown = (window.innerHeight - box.top) / box.height
    return Math.max(0, Math.min(100, Math.floor(shown * 100)))
  }

  function takeSeconds () {
    const now = performance.now()
    if (visibleSince !== null) {
      unreported += now - visibleSince
      visibleSince = now
    }
    const seconds = Math.min(120, Math.floor(unreported / 1000))
    unreported -= seconds * 1000
    return seconds
  }

  function payload () {
    const data = new FormData()
    data.append('csrfmiddlewaretoken', form.elements.csrfmiddlewaretoken.value)
    data.append('version', form.elements.version.value)
    data.append('seconds', takeSeconds())
    data.append('percent', furthest)
    return data
  }

  function unlock () {
    if (unlocked) {
      return
    }
    unlocked = true
    button.removeAttribute('aria-disabled')
    if (note) {
      note.textContent = note.dataset.done
    }
  }

  function report () {
    const endShown = furthest === 100
    reported = furthest
    return fetch(url, { method: 'POST', body: payload(), credentials: 'same-origin' }).then(function (response) {
      if (!response.ok) {
        throw new Error('reading report refused: ' + response.status)
      }
      if (endShown) {
        unlock()
      }
    }).catch(function () {
      // The reading cannot be reported: the acknowledgement then stands on the opening alone,
      // and says so; nobody is kept from acknowledging by a network failure.
      field.value = ''
      unlock()
    })
  }

  function beacon () {
    if (navigator.sendBeacon) {
      navigator.sendBeacon(url, payload())
    }
  }

  function look () {
    const shown = percentShown()
    if (shown > furthest) {
      furthest = shown
      if (furthest === 100 && reported < 100) {
        report()
      }
    }
  }

  if (!unlocked) {
    button.setAttribute('aria-disabled', 'true')
    note.hidden = false
    button.setAttribute('aria-describedby', 'reading-note')
  }
  form.addEventListener('submit', function (event) {
    if (!unlocked) {
      event.preventDefault()
      note.focus({ preventScroll: true }) // it stands right above the button
      return
    }
    beacon() // the seconds since the last report, ahead of the acknowledgement
  })
  window.addEventListener('scroll', look, { passive: true })
  window.addEventListener('resize', look, { passive: true })
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') {
      visibleSince = performance.now()
    } else {
      takeSeconds()
      visibleSince = null
      beacon()
    }
  })
  window.addEventListener('pagehide', beacon)
  setInterval(function () {
    if (document.visibilityState === 'visible') {
      report()
    }
  }, 15000)
  look()
  if (furthest < 100) {
    report() // the first look, however far
  }
})()
