//! Quorum arithmetic: how many votes make a decision. Pure functions, table-tested.
//!
//! `counted` is the counted membership of docs/ALGORITHM.md, "The contract" (alive + lost,
//! without dispatched or certainly crashed members), raised to `--expect`. A strict majority always wins. An exact
//! half wins only if it holds the highest-ranked counted member, so the other half cannot also
//! win; when `--expect` pads the count with members never seen, their ranks are unknown and an
//! exact half never wins.

/// Votes for a strict majority of `counted`.
pub fn majority(counted: usize) -> usize {
    counted / 2 + 1
}

/// Whether `votes` out of `counted` decide. `top_included`: the highest-ranked counted member is
/// among the votes. `padded`: `counted` was raised by `--expect` above the members known.
pub fn has_quorum(counted: usize, votes: usize, top_included: bool, padded: bool) -> bool {
    if counted == 0 {
        return false;
    }
    2 * votes > counted || (2 * votes == counted && top_included && !padded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_table() {
        // (counted, votes, top_included, padded) -> decides
        let rows: &[(usize, usize, bool, bool, bool)] = &[
            (1, 1, true, false, true),   // alone: master of itself
            (1, 0, false, false, false), // nobody votes
            (2, 2, true, false, true),   // both
            (2, 1, true, false, true),   // exact half with the top member (scenario 3)
            (2, 1, false, false, false), // exact half without it (scenario 4, silent cut)
            (2, 1, true, true, false),   // --expect 2 alone: never a half win
            (3, 2, false, false, true),  // witness + bob against a silent alice
            (3, 1, true, false, false),  // alice alone against bob + witness
            (4, 2, true, false, true),   // half with the top
            (4, 2, false, false, false), // the other half
            (4, 3, false, false, true),
            (5, 2, true, false, false), // minority even with the top
            (5, 3, false, false, true),
            (6, 3, true, true, false), // padded half
            (6, 4, false, true, true), // padded majority still wins
            (0, 0, false, false, false),
            (100, 50, true, false, true),
            (100, 50, false, false, false),
            (100, 51, false, false, true),
        ];
        for &(counted, votes, top, padded, want) in rows {
            assert_eq!(
                has_quorum(counted, votes, top, padded),
                want,
                "counted={counted} votes={votes} top={top} padded={padded}"
            );
        }
    }

    #[test]
    fn majority_table() {
        for (n, m) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (100, 51)] {
            assert_eq!(majority(n), m, "n={n}");
        }
    }

    #[test]
    fn two_disjoint_halves_never_both_win() {
        // Exhaustive over small clusters: split n members into two disjoint groups; at most one
        // group decides, whoever holds the top member.
        for n in 1..=12usize {
            for a in 0..=n {
                let b = n - a;
                for top_in_a in [true, false] {
                    let wa = has_quorum(n, a, top_in_a, false);
                    let wb = has_quorum(n, b, !top_in_a, false);
                    assert!(!(wa && wb), "n={n} a={a} b={b}");
                }
            }
        }
    }
}
