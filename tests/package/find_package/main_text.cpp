// Consumer of deq::text (find_package(deq COMPONENTS Text)): tokenizes with a small vocabulary,
// which needs utf8proc for the accent stripping (NFD) of "Héllo".
#include <deq/text/bert_tokenizer.hpp>

#include <cstdio>

int main() {
    auto vocab = deq::text::vocab::from_tokens({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "!"});
    deq::text::bert_tokenizer const tokenizer(std::move(vocab));
    auto const e = tokenizer.encode("Héllo WORLD!");
    std::vector<std::int64_t> const expected = {2, 5, 6, 7, 3};
    if (e.input_ids.size() != expected.size()) {
        std::printf("unexpected length %zu\n", e.input_ids.size());
        return 1;
    }
    for (std::size_t i = 0; i < expected.size(); ++i) {
        if (static_cast<std::int64_t>(e.input_ids[i]) != expected[i]) {
            std::printf("token %zu: got %lld, expected %lld\n", i, static_cast<long long>(e.input_ids[i]),
                        static_cast<long long>(expected[i]));
            return 1;
        }
    }
    std::printf("deq::text consumer: ok\n");
    return 0;
}
