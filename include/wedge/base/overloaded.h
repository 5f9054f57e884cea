// A visitor made of lambdas, one per alternative: std::visit(Overloaded{...}, variant).
#pragma once

namespace wedge {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace wedge
