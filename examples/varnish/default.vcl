# Varnish in front of an asgi-cache application (Varnish 7, vmod xkey from
# varnish-modules).  What it does:
#
# * stores what the application lets a shared cache store, for as long as its
#   CDN-Cache-Control (RFC 9213) or Surrogate-Control says, else Cache-Control;
# * indexes each object by the keys of its Surrogate-Key header (xkey);
# * takes purges from the purgers' addresses: "PURGE /" with the keys in an
#   xkey-purge header, "BAN /" with a URL regex in a ban-url header;
# * adds its own member to Cache-Status (RFC 9211) and strips what is meant
#   for it alone (keys, targeted freshness) before answering clients.
#
# The backend below is the application (uvicorn on port 8000); change it, or
# run with the port put in by sed, as examples/varnish/README.md shows.

vcl 4.1;

import std;
import xkey;

backend default {
    .host = "127.0.0.1";
    .port = "8000";
}

acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.xkey-purge) {
            return (synth(400, "PURGE needs an xkey-purge header"));
        }
        set req.http.n-gone = xkey.purge(req.http.xkey-purge);
        return (synth(200, "Purged " + req.http.n-gone + " objects"));
    }
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.ban-url) {
            return (synth(400, "BAN needs a ban-url header"));
        }
        ban("obj.http.x-url ~ " + req.http.ban-url);
        return (synth(200, "Banned"));
    }
    # Tells the application this request comes from the cache in front
    # (Cache(surrogate_keys_for="surrogate-capability")); a client's own is
    # replaced.
    set req.http.Surrogate-Capability = "varnish=surrogate-keys";
    # The builtin vcl_recv follows: only GET and HEAD are looked up, and a
    # request with Authorization or Cookie goes to the application.
}

sub vcl_backend_response {
    # For bans by URL that the ban lurker can apply in the background.
    set beresp.http.x-url = bereq.url;
    if (beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
    }
    # RFC 9213 CDN-Cache-Control, else Surrogate-Control: obeyed instead of
    # Cache-Control.
    if (beresp.http.CDN-Cache-Control) {
        set beresp.http.x-front = beresp.http.CDN-Cache-Control;
    } elsif (beresp.http.Surrogate-Control) {
        set beresp.http.x-front = beresp.http.Surrogate-Control;
    }
    if (beresp.http.x-front) {
        if (beresp.http.x-front ~ "(?i)(no-store|private|no-cache)") {
            unset beresp.http.x-front;
            set beresp.uncacheable = true;
            set beresp.ttl = 120s;
            return (deliver);
        }
        if (beresp.http.x-front ~ "(?i)max-age=[0-9]+") {
            set beresp.ttl = std.duration(
                regsub(beresp.http.x-front, "(?i)^.*max-age=([0-9]+).*$", "\1s"), 0s);
            set beresp.grace = 0s;
            unset beresp.http.x-front;
            if (beresp.http.Set-Cookie || beresp.http.Vary == "*") {
                set beresp.uncacheable = true;
            }
            return (deliver);
        }
        unset beresp.http.x-front;
    }
    # The builtin vcl_backend_response follows: Surrogate-Control no-store,
    # Cache-Control private / no-store / no-cache and Set-Cookie are not stored.
}

sub vcl_deliver {
    # RFC 9211: the member of the cache nearest the client comes last.
    if (obj.hits > 0) {
        set req.http.x-status = "varnish; hit";
    } elsif (obj.uncacheable) {
        set req.http.x-status = "varnish; fwd=bypass";
    } else {
        set req.http.x-status = "varnish; fwd=uri-miss";
    }
    if (resp.http.Cache-Status) {
        set resp.http.Cache-Status = resp.http.Cache-Status + ", " + req.http.x-status;
    } else {
        set resp.http.Cache-Status = req.http.x-status;
    }
    unset resp.http.x-url;
    unset resp.http.xkey;
    unset resp.http.Surrogate-Key;
    unset resp.http.CDN-Cache-Control;
    unset resp.http.Surrogate-Control;
}
