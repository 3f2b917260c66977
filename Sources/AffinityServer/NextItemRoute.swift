import Foundation
import Hummingbird
import AffinityServing

/// `GET /v1/users/{id}/next`: the user's events as stored (oldest first, the newest last), ranked by the sequential
/// model for what comes next. Read at request time, so an event posted a moment ago counts at once.
/// `{"items": [{"item", "score"}…], "model", "events", "user"}`; `events` counts the stored events the model read.
func nextItemsResponse(_ ranker: NextItemRanker, store: EventStore, user: String, k: Int) throws -> Response {
    // The newest events only (twice the model's window, so that items it was not trained on, which it skips,
    // rarely leave the window short); the whole history can be thousands of events.
    let events = try store.events(of: user, newest: 2 * ranker.maxLength)
    let ranked = ranker.next(after: events.map { ($0.item, $0.timestamp) }, k: k)
    var out = #"{"items":["#
    for (n, entry) in ranked.enumerated() {
        if n > 0 { out += "," }
        out += #"{"item":"#
        appendJSONString(entry.item, to: &out)
        out += #","score":"# + (entry.score.isFinite ? String(entry.score) : "null") + "}"
    }
    out += #"],"model":"#
    appendJSONString(ranker.name, to: &out)
    out += #","events":\#(events.count),"user":"#
    appendJSONString(user, to: &out)
    out += "}"
    return response(ByteBuffer(string: out))
}
